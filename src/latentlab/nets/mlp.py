"""Multi-layer perceptrons: the generator and discriminator of the 2-D mixture GAN.

Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014 (MLP G and D). Plain ReLU MLPs; the widths
and depths are the caller's (``methods/gan2d.py`` states its choice and the papers' networks: Unrolled GAN
2x128 ReLU, PacGAN a 4x400 BatchNorm-ReLU G and a maxout D, which these are not).
"""

from __future__ import annotations

import torch
from torch import nn

from .registry import register


class MLP(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, hidden: int = 128, depth: int = 2,
                 act: str = "relu", out_act: str | None = None):
        super().__init__()
        acts = {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.2), "tanh": nn.Tanh}
        layers, d = [], in_dim
        for _ in range(depth):
            layers += [nn.Linear(d, hidden), acts[act]()]
            d = hidden
        layers.append(nn.Linear(d, out_dim))
        if out_act is not None:
            layers.append(acts[out_act]())
        self.net = nn.Sequential(*layers)
        self.in_dim, self.out_dim = in_dim, out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, in) -> (B, out)
        return self.net(x)


@register("mlp_generator", kind="generator", example=lambda: (dict(in_dim=2, out_dim=2), (torch.randn(4, 2),)))
def mlp_generator(in_dim: int = 2, out_dim: int = 2, hidden: int = 128, depth: int = 2) -> MLP:
    return MLP(in_dim, out_dim, hidden, depth, act="relu")


@register("mlp_discriminator", kind="discriminator",
          example=lambda: (dict(in_dim=2), (torch.randn(4, 2),)))
def mlp_discriminator(in_dim: int = 2, hidden: int = 128, depth: int = 2) -> MLP:
    return MLP(in_dim, 1, hidden, depth, act="relu")  # logits, no sigmoid
