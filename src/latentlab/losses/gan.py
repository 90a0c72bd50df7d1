"""The GAN value function and its generator losses, on discriminator *logits* (no sigmoid).

Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014, https://arxiv.org/abs/1406.2661:
    min_G max_D  V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))],   D = sigmoid(logit).
Using log sigmoid(l) = -softplus(-l) and log(1 - sigmoid(l)) = -softplus(l) keeps them stable.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def discriminator_loss_minimax(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-V(D, G): the discriminator *minimises* -E[log D(x)] - E[log(1 - D(G(z)))] (Eq. 1)."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss_minimax(fake_logits: torch.Tensor) -> torch.Tensor:
    """The minimax generator loss E_z[log(1 - D(G(z)))] (Eq. 1); saturates when D rejects samples."""
    return -F.softplus(fake_logits).mean()


def generator_loss_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """The non-saturating heuristic -E_z[log D(G(z))] (Sec. 3): strong gradients early in training."""
    return F.softplus(-fake_logits).mean()
