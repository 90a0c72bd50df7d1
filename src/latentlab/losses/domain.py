"""Domain-adaptation losses: one function per term, named after its paper.

- ``domain_adversarial_loss``: Ganin et al., "Domain-adversarial training of neural networks", JMLR 2016
  (arXiv:1505.07818), eq. 9-10: the domain classifier's logistic loss, source labelled 1 and target 0;
  optional per-sample weights (CDAN+E).
- ``multilinear_map`` / ``entropy`` / ``cdan_entropy_weights``: Long et al., "Conditional adversarial domain
  adaptation", NeurIPS 2018 (arXiv:1705.10667), Sec. 3.1-3.3: the discriminator sees f (x) g, and CDAN+E
  weights each sample by w = 1 + exp(-H(g)) (detached here), normalised within each domain as the authors' code does.
- ``classifier_discrepancy``: Saito et al., "Maximum classifier discrepancy for unsupervised domain
  adaptation", CVPR 2018 (arXiv:1712.02560), eq. 1: the mean absolute difference of two classifiers' softmax.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def domain_adversarial_loss(d_source: torch.Tensor, d_target: torch.Tensor,
                            w_source: torch.Tensor | None = None, w_target: torch.Tensor | None = None
                            ) -> torch.Tensor:
    """Binary cross-entropy of the discriminator's logits (B_s,), (B_t,): source -> 1, target -> 0.

    Unweighted: the mean over all B_s + B_t samples (CDAN's and TLlib's form; for equal batches half of DANN's
    eq. 10, which sums the two domains' means). Weighted: sum(w * bce) / sum(w) over both domains.
    """
    logits = torch.cat([d_source, d_target])
    labels = torch.cat([torch.ones_like(d_source), torch.zeros_like(d_target)])
    bce = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    if w_source is None and w_target is None:
        return bce.mean()
    if w_source is None or w_target is None:
        raise ValueError("give the weights of both domains or of neither")
    w = torch.cat([w_source, w_target]).to(bce.dtype)
    return (w * bce).sum() / w.sum()


def multilinear_map(f: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """f (B, F), g (B, C) -> f (x) g flattened (B, C * F): entry [c * F + i] = g_c f_i."""
    return (g.unsqueeze(2) * f.unsqueeze(1)).flatten(1)


def entropy(p: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Per-sample entropy of probabilities (B, C) in nats: (B,)."""
    return -(p * (p + eps).log()).sum(1)


def cdan_entropy_weights(p_source: torch.Tensor, p_target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """CDAN+E's w = 1 + exp(-H(g)) for each domain's predictions (detached), each domain's weights normalised
    to sum to 1 (so both domains weigh equally in ``domain_adversarial_loss``)."""
    ws, wt = (1 + torch.exp(-entropy(p.detach())) for p in (p_source, p_target))
    return ws / ws.sum(), wt / wt.sum()


def classifier_discrepancy(p1: torch.Tensor, p2: torch.Tensor) -> torch.Tensor:
    """d(p1, p2) = mean over samples and classes of |p1 - p2| (probabilities (B, C))."""
    return (p1 - p2).abs().mean()
