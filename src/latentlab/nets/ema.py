"""Exponential moving averages of weights: momentum teachers (MoCo, BYOL, DINO) and averaged generators."""

from __future__ import annotations

import torch
from torch import nn

from ..modules import unwrap


def frozen_copy(module: nn.Module) -> nn.Module:
    """A copy of ``module`` without gradients: the start of a weight average (an EMA generator, a teacher)."""
    import copy
    return copy.deepcopy(module).requires_grad_(False)


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """target <- m * target + (1 - m) * online, for parameters; buffers (BN statistics) are copied."""
    for pt, po in zip(unwrap(target).parameters(), unwrap(online).parameters()):
        pt.mul_(momentum).add_(po.detach(), alpha=1 - momentum)
    for bt, bo in zip(unwrap(target).buffers(), unwrap(online).buffers()):
        bt.copy_(bo)


def ramped_decay(decay: float, rampup: float):
    """The decay at each step of a weight average whose half-life grows with training: StyleGAN2-ADA's
    ``ema_rampup`` (Karras et al. 2020; 0.05 in its ``auto`` and ``cifar`` configurations). The half-life, in steps,
    is min(h, rampup * steps done) with h that of ``decay`` (ln 0.5 / ln decay), so a short run averages its
    recent weights instead of carrying its initialisation (0.999^500 = 0.61 of it after 500 steps without).
    ``rampup`` 0: the constant ``decay``. Returns ``done -> decay``."""
    import math
    if rampup <= 0:
        return lambda done: decay
    half = math.log(0.5) / math.log(decay)

    def at(done: int) -> float:
        return 0.5 ** (1.0 / max(min(half, rampup * done), 1e-8))
    return at
