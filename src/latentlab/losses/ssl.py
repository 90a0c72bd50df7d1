"""Self-supervised losses: contrastive (InfoNCE / N-pair, NT-Xent), BYOL, Barlow Twins, DINO.

Every function takes embeddings (not images), validates shapes, and returns a scalar mean loss.

- InfoNCE / N-pair: Sohn, "Improved deep metric learning with multi-class N-pair loss objective",
  NeurIPS 2016; van den Oord et al., "Representation learning with contrastive predictive coding", 2018.
  For a query q with positive key k+ and negatives k_1..k_K (cosine similarities, temperature tau):
      L = -log  exp(q.k+ / tau) / ( exp(q.k+ / tau) + sum_i exp(q.k_i / tau) )
- NCE: Gutmann & Hyvarinen, "Noise-contrastive estimation", AISTATS 2010, as NPID uses it (Wu et al.
  2018, Eq. 5-7; PIRL, Misra & van der Maaten 2020, Eq. 3-4): with P(i|v) = exp(s / tau) / Z and uniform
  noise P_n = 1/n over the n data, h = P / (P + K P_n) is the probability that a pair is data, not noise:
      L = -log h(positive) - sum_i log(1 - h(negative_i))
- NT-Xent: Chen et al., "A simple framework for contrastive learning of visual representations"
  (SimCLR), ICML 2020, Eq. 1: 2N views, each view's positive is its pair, the other 2N-2 are negatives.
- BYOL: Grill et al., "Bootstrap your own latent", NeurIPS 2020, Eq. 2: ||p/|p| - z/|z|||^2 = 2 - 2 cos.
- Barlow Twins: Zbontar et al., ICML 2021, Eq. 1 on the cross-correlation of batch-standardised embeddings.
- DINO: Caron et al., "Emerging properties in self-supervised vision transformers", ICCV 2021, Eq. 1-3.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..distributed import world_size


def _check_2d(name: str, t: torch.Tensor) -> None:
    if t.ndim != 2:
        raise ValueError(f"{name} must be (B, D), got shape {tuple(t.shape)}")


def _check_temperature(tau: float) -> None:
    if not tau > 0:
        raise ValueError(f"temperature must be > 0, got {tau}")


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` (B, D) from every process along dim 0, keeping gradients (identity if 1 process).

    The backward of ``torch.distributed.nn.functional.all_gather`` sums the incoming gradients over
    processes, so when every process computes the same global loss, DDP's gradient averaging yields
    exactly the 1-process gradient of the loss on the concatenated batch.
    """
    if world_size() == 1:
        return x
    from torch.distributed.nn.functional import all_gather
    return torch.cat(all_gather(x.contiguous()), 0)


def info_nce(query: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor,
             temperature: float = 0.07, normalize: bool = True) -> torch.Tensor:
    """The InfoNCE / N-pair loss of the course: one positive and K negatives per query.

    query (B, D), positive (B, D), negatives (K, D) shared by all queries or (B, K, D) per query.
    With ``normalize`` the dot products are cosine similarities. Returns the mean over the B queries.
    """
    _check_temperature(temperature)
    pos, neg = _similarities(query, positive, negatives, normalize)
    logits = torch.cat([pos, neg], 1) / temperature                    # (B, 1 + K), positive at 0
    return F.cross_entropy(logits, torch.zeros(len(query), dtype=torch.long, device=query.device))


def _similarities(query, positive, negatives, normalize: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Checked shapes -> positive (B, 1) and negative (B, K) dot products (cosines with ``normalize``)."""
    _check_2d("query", query)
    _check_2d("positive", positive)
    if query.shape != positive.shape:
        raise ValueError(f"query {tuple(query.shape)} and positive {tuple(positive.shape)} differ")
    if negatives.ndim not in (2, 3) or negatives.shape[-1] != query.shape[1] or \
            (negatives.ndim == 3 and negatives.shape[0] != query.shape[0]):
        raise ValueError(f"negatives must be (K, D) or (B, K, D) with D={query.shape[1]}, got {tuple(negatives.shape)}")
    if normalize:
        query, positive, negatives = (F.normalize(t, dim=-1) for t in (query, positive, negatives))
    pos = (query * positive).sum(1, keepdim=True)                     # (B, 1)
    if negatives.ndim == 2:
        return pos, query @ negatives.t()                              # (B, K)
    return pos, torch.einsum("bd,bkd->bk", query, negatives)           # (B, K)


def nce_loss(query: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor, n_data: int,
             log_z: float = 0.0, temperature: float = 0.07, normalize: bool = True) -> torch.Tensor:
    """NPID's / PIRL's binary NCE: each pair is classified as data (the positive) or noise (the K negatives).

    P(i|v) = exp(s / tau) / Z (``log_z`` = log Z, a constant: NPID estimates it once with
    ``nce_log_normaliser``), noise P_n = 1 / ``n_data``, h = P / (P + K / n_data) = sigmoid(s / tau -
    log Z - log(K / n_data)). Returns the batch mean of -log h(positive) - sum_k log(1 - h(negative_k)).
    """
    _check_temperature(temperature)
    if n_data < 1:
        raise ValueError(f"n_data must be >= 1, got {n_data}")
    pos, neg = _similarities(query, positive, negatives, normalize)
    shift = log_z + math.log(neg.shape[1] / n_data)
    return (F.softplus(shift - pos / temperature).sum(1) + F.softplus(neg / temperature - shift).sum(1)).mean()


@torch.no_grad()
def nce_log_normaliser(query: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor, n_data: int,
                       temperature: float = 0.07, normalize: bool = True) -> float:
    """NPID's Monte-Carlo estimate of log Z = log(n E[exp(s / tau)]) over these (1 + K) pairs per query."""
    pos, neg = _similarities(query, positive, negatives, normalize)
    s = torch.cat([pos, neg], 1).flatten() / temperature
    return (torch.logsumexp(s, 0) - math.log(s.numel()) + math.log(n_data)).item()


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5, gather: bool = True) -> torch.Tensor:
    """SimCLR's normalized temperature-scaled cross entropy over 2N views (z1[i], z2[i] are a pair).

    With ``gather`` the views of every process are concatenated (with gradients) first, so the
    negatives are the whole global batch. Every identical embedding gives exactly log(2N - 1).
    """
    _check_2d("z1", z1)
    _check_2d("z2", z2)
    _check_temperature(temperature)
    if z1.shape != z2.shape:
        raise ValueError(f"z1 {tuple(z1.shape)} and z2 {tuple(z2.shape)} differ")
    if gather:
        z1, z2 = gather_with_grad(z1), gather_with_grad(z2)
    n = z1.shape[0]
    if n < 2:
        raise ValueError("nt_xent needs at least 2 pairs (negatives)")
    z = F.normalize(torch.cat([z1, z2], 0), dim=1)                     # (2N, D)
    sim = z @ z.t() / temperature                                       # (2N, 2N)
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)  # pair index
    return F.cross_entropy(sim, target)


def byol_loss(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """BYOL's normalized MSE between the online prediction p and the (detached) target projection z."""
    _check_2d("p", p)
    _check_2d("z", z)
    if p.shape != z.shape:
        raise ValueError(f"p {tuple(p.shape)} and z {tuple(z.shape)} differ")
    return (2 - 2 * F.cosine_similarity(p, z.detach(), dim=1)).mean()


def barlow_twins_loss(z1: torch.Tensor, z2: torch.Tensor, lambd: float = 5e-3, eps: float = 1e-5) -> torch.Tensor:
    """sum_i (1 - C_ii)^2 + lambda sum_{i != j} C_ij^2, C the (D, D) cross-correlation over the batch."""
    _check_2d("z1", z1)
    _check_2d("z2", z2)
    if z1.shape != z2.shape or z1.shape[0] < 2:
        raise ValueError(f"z1 {tuple(z1.shape)} and z2 {tuple(z2.shape)} must match with batch >= 2")
    if lambd < 0:
        raise ValueError(f"lambd must be >= 0, got {lambd}")
    n = z1.shape[0]
    a = (z1 - z1.mean(0)) / (z1.std(0, unbiased=False) + eps)
    b = (z2 - z2.mean(0)) / (z2.std(0, unbiased=False) + eps)
    c = a.t() @ b / n                                                   # (D, D)
    on = (torch.diagonal(c) - 1).pow(2).sum()
    off = c.pow(2).sum() - torch.diagonal(c).pow(2).sum()
    return on + lambd * off


def dino_loss(student: list[torch.Tensor], teacher: list[torch.Tensor], center: torch.Tensor,
              student_temp: float = 0.1, teacher_temp: float = 0.04) -> torch.Tensor:
    """Cross-entropy H(P_t, P_s) averaged over every (teacher view, student view) pair of different views.

    student: V views of (B, K) logits (the first len(teacher) are the global crops); teacher: G views of
    (B, K) logits, centred by ``center`` (1, K) and sharpened by ``teacher_temp``; no gradient to the teacher.
    """
    _check_temperature(student_temp)
    _check_temperature(teacher_temp)
    if not teacher or len(student) < len(teacher):
        raise ValueError(f"need >= 1 teacher view and at least as many student views, got {len(teacher)}, {len(student)}")
    t_prob = [F.softmax((t.detach() - center) / teacher_temp, dim=-1) for t in teacher]
    s_logp = [F.log_softmax(s / student_temp, dim=-1) for s in student]
    total, pairs = 0.0, 0
    for ti, pt in enumerate(t_prob):
        for si, ls in enumerate(s_logp):
            if si == ti:
                continue
            total = total + (-(pt * ls).sum(-1)).mean()
            pairs += 1
    if pairs == 0:
        raise ValueError("dino_loss needs at least two views")
    return total / pairs


@torch.no_grad()
def dino_center_update(center: torch.Tensor, teacher: list[torch.Tensor], momentum: float = 0.9) -> torch.Tensor:
    """DINO Eq. 4: c <- m c + (1 - m) mean of the teacher outputs over the (global) batch."""
    t = gather_with_grad(torch.cat(teacher, 0))
    return center * momentum + t.mean(0, keepdim=True) * (1 - momentum)
