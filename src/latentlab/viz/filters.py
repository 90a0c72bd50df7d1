"""First-layer kernels as a picture (Krizhevsky et al. 2012, Fig. 3: the 96 learned 11x11x3 kernels)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import LatentlabError
from .grid import make_grid


def first_conv(model: nn.Module) -> tuple[str, nn.Conv2d]:
    """The first ``Conv2d`` in module order, with its name."""
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            return name, m
    raise LatentlabError(f"{type(model).__name__} has no Conv2d layer: no filters to show")


def normalize_kernels(w: torch.Tensor) -> torch.Tensor:
    """(K, C, h, w) -> the same in [0, 1], each kernel min-max scaled on its own (all channels together)."""
    w = w.detach().float().cpu()
    lo = w.flatten(1).min(1).values.view(-1, 1, 1, 1)
    hi = w.flatten(1).max(1).values.view(-1, 1, 1, 1)
    return (w - lo) / (hi - lo).clamp_min(1e-12)


def filter_grid(model_or_weight: nn.Module | torch.Tensor, scale: int | None = None, padding: int = 1,
                nrow: int | None = None) -> torch.Tensor:
    """First-layer kernels -> (3, H, W) grid in [0, 1].

    RGB kernels are shown in colour; other inputs show each kernel's channels side by side in grey
    (one channel for grayscale inputs). ``scale`` upsamples each kernel (nearest) to be visible;
    by default so that a kernel is at least 24 px.
    """
    w = model_or_weight if isinstance(model_or_weight, torch.Tensor) else first_conv(model_or_weight)[1].weight
    if w.dim() != 4:
        raise ValueError(f"filter_grid expects conv weights (K, C, h, w), got {tuple(w.shape)}")
    w = normalize_kernels(w)                                          # (K, C, h, w)
    k, c, h, ww = w.shape
    if c not in (1, 3):                                               # channels side by side, grey
        w = w.permute(0, 2, 1, 3).reshape(k, 1, h, c * ww)
    scale = scale or max(1, math.ceil(24 / h))
    if scale > 1:
        w = F.interpolate(w, scale_factor=scale, mode="nearest")
    return make_grid(w, nrow=nrow or max(1, math.ceil(math.sqrt(k))), padding=padding, pad_value=1.0)
