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
