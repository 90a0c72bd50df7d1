"""Pieces of adversarial domain adaptation: the gradient reversal layer, the domain discriminator, and CDAN's
randomised multilinear map.

- ``grad_reverse``: Ganin & Lempitsky, "Unsupervised domain adaptation by backpropagation", ICML 2015 (and the
  JMLR 2016 DANN paper, Sec. 4.2): the identity forward, the gradient times ``-coeff`` backward.
- ``DomainDiscriminator``: an MLP from features to one logit (source vs target), ReLU, optional dropout.
- ``RandomizedMultilinear``: Long et al., "Conditional adversarial domain adaptation", NeurIPS 2018, Sec. 3.2:
  T(f, g) = (R_f f) * (R_g g) / sqrt(d) with fixed Gaussian R_f, R_g, for when f (x) g is too wide.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .registry import register


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, coeff: float) -> torch.Tensor:
        ctx.coeff = coeff
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.coeff * grad, None


def grad_reverse(x: torch.Tensor, coeff: float = 1.0) -> torch.Tensor:
    """R_lambda(x) = x forward; dR/dx = -lambda I backward (``coeff`` = lambda)."""
    return _GradReverse.apply(x, float(coeff))


class DomainDiscriminator(nn.Module):
    def __init__(self, in_dim: int, hidden: tuple[int, ...] = (100,), dropout: float = 0.0):
        super().__init__()
        layers, d = [], in_dim
        for h in hidden:
            layers += [nn.Linear(d, h), nn.ReLU(inplace=True)] + ([nn.Dropout(dropout)] if dropout else [])
            d = h
        self.net = nn.Sequential(*layers, nn.Linear(d, 1))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.net(f).squeeze(1)                              # (B,) logits of "source"


class RandomizedMultilinear(nn.Module):
    """(B, F), (B, C) -> (B, d); R_f (F, d) and R_g (C, d) are fixed buffers drawn from N(0, 1) with ``seed``."""

    def __init__(self, f_dim: int, c_dim: int, out_dim: int = 1024, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        # fixed by the seed, so not part of the state (a checkpoint holds only what training changes)
        self.register_buffer("rf", torch.randn(f_dim, out_dim, generator=g), persistent=False)
        self.register_buffer("rg", torch.randn(c_dim, out_dim, generator=g), persistent=False)
        self.out_dim = out_dim

    def forward(self, f: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return (f @ self.rf.to(f.dtype)) * (g @ self.rg.to(g.dtype)) / math.sqrt(self.out_dim)   # (B, d)


@register("domain_discriminator", kind="discriminator",
          example=lambda: (dict(in_dim=8, hidden=(4,)), (torch.randn(2, 8),)))
def domain_discriminator(**kw) -> DomainDiscriminator:
    return DomainDiscriminator(**kw)
