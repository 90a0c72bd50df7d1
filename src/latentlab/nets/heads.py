"""MLP heads put on top of an encoder's features during self-supervised training.

- ``ProjectionHead``: Linear-BN-ReLU blocks then a Linear (SimCLR's g(.), MoCo v2's MLP, BYOL's
  projector, Barlow Twins' 3-layer projector); ``last_bn`` adds a final affine-free BN (Barlow Twins).
- ``PredictionHead``: BYOL's predictor q(.), the same MLP shape (Grill et al. 2020, Sec. 3.3).
- ``DINOHead``: DINO's 3-layer MLP -> bottleneck -> L2-normalise -> weight-normalised Linear to K
  prototypes (Caron et al. 2021, Sec. 3.1 and App.), GELU; BN optional (the code's use_bn_in_head).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .registry import register


def _mlp(in_dim: int, hidden: tuple[int, ...], out_dim: int, bn: bool = True) -> list[nn.Module]:
    layers, d = [], in_dim
    for h in hidden:
        layers += [nn.Linear(d, h, bias=not bn)] + ([nn.BatchNorm1d(h)] if bn else []) + [nn.ReLU(inplace=True)]
        d = h
    layers.append(nn.Linear(d, out_dim))
    return layers


class ProjectionHead(nn.Sequential):
    def __init__(self, in_dim: int, hidden: tuple[int, ...] = (2048,), out_dim: int = 128, bn: bool = True,
                 last_bn: bool = False):
        layers = _mlp(in_dim, tuple(hidden), out_dim, bn)
        if last_bn:
            layers.append(nn.BatchNorm1d(out_dim, affine=False))
        super().__init__(*layers)


class PredictionHead(ProjectionHead):
    """BYOL's predictor: same shape as the projector, from out_dim back to out_dim."""


class DINOHead(nn.Module):
    def __init__(self, in_dim: int, out_dim: int = 65536, hidden: int = 2048, bottleneck: int = 256,
                 nlayers: int = 3, use_bn: bool = False):
        super().__init__()
        layers, d = [], in_dim
        for _ in range(nlayers - 1):
            layers += [nn.Linear(d, hidden)] + ([nn.BatchNorm1d(hidden)] if use_bn else []) + [nn.GELU()]
            d = hidden
        layers.append(nn.Linear(d, bottleneck))
        self.mlp = nn.Sequential(*layers)
        self.last_layer = nn.utils.parametrizations.weight_norm(nn.Linear(bottleneck, out_dim, bias=False))
        with torch.no_grad():   # weight-norm magnitude fixed at 1 (DINO's norm_last_layer)
            self.last_layer.parametrizations.weight.original0.fill_(1.0)
        self.last_layer.parametrizations.weight.original0.requires_grad_(False)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        x = F.normalize(self.mlp(f), dim=-1)                    # (B, bottleneck)
        return self.last_layer(x)                               # (B, K)


@register("projection_head", kind="head",
          example=lambda: (dict(in_dim=8, hidden=(16,), out_dim=4), (torch.randn(3, 8),)))
def projection_head(**kw) -> ProjectionHead:
    return ProjectionHead(**kw)


@register("prediction_head", kind="head",
          example=lambda: (dict(in_dim=4, hidden=(16,), out_dim=4), (torch.randn(3, 4),)))
def prediction_head(**kw) -> PredictionHead:
    return PredictionHead(**kw)


@register("dino_head", kind="head",
          example=lambda: (dict(in_dim=8, out_dim=32, hidden=16, bottleneck=8), (torch.randn(3, 8),)))
def dino_head(**kw) -> DINOHead:
    return DINOHead(**kw)
