"""Losses of unpaired image-to-image translation.

- ``cycle_consistency_loss``: Zhu et al., "Unpaired Image-to-Image Translation using Cycle-Consistent
  Adversarial Networks", ICCV 2017, https://arxiv.org/abs/1703.10593, Eq. 2: E ||F(G(x)) - x||_1 (one direction).
- ``identity_loss``: the same paper, Sec. 5.2 (after Taigman et al. 2017): E ||G(y) - y||_1 for y of G's
  output domain, which keeps colour composition.
- ``semantic_consistency_loss``: CyCADA, Hoffman et al., ICML 2018, https://arxiv.org/abs/1711.03213, Eq. 4:
  L_task(f, G(X), p(f, X)): a frozen classifier f's cross-entropy on the translation against its own hard
  prediction on the original (one direction; CyCADA sums both).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cycle_consistency_loss(reconstructed: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mean absolute error between F(G(x)) and x (Zhu et al. 2017, Eq. 2)."""
    if reconstructed.shape != real.shape:
        raise ValueError(f"reconstruction {tuple(reconstructed.shape)} and input {tuple(real.shape)} differ in shape")
    return (reconstructed - real).abs().mean()


def identity_loss(mapped: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mean absolute error between G(y) and y, y from G's output domain (Zhu et al. 2017, Sec. 5.2)."""
    if mapped.shape != real.shape:
        raise ValueError(f"G(y) {tuple(mapped.shape)} and y {tuple(real.shape)} differ in shape")
    return (mapped - real).abs().mean()


def semantic_consistency_loss(translated_logits: torch.Tensor, original_logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the frozen classifier on the translation against argmax of its logits on the original
    image (CyCADA, Eq. 4); no gradient flows through the pseudo-labels."""
    if translated_logits.shape != original_logits.shape or translated_logits.ndim != 2:
        raise ValueError(f"logits must be two (B, K) tensors of one shape, got {tuple(translated_logits.shape)} "
                         f"and {tuple(original_logits.shape)}")
    return F.cross_entropy(translated_logits, original_logits.detach().argmax(1))
