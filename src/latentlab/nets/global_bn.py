"""Global BatchNorm: batch statistics over the whole global batch of every process (any device, gloo too).

SimCLR (Chen et al. 2020, Sec. 2, "Global BN") and BYOL aggregate BN mean and variance over all devices:
with per-device BN a multi-process run normalises each half-batch by its own statistics, trains a
different model than one process on the full batch, and lets contrastive methods match positives by
the local statistics. ``torch.nn.SyncBatchNorm`` does this on GPUs only; this module also runs on CPU.

Under one process (or in eval mode) it is exactly ``BatchNorm``. Across processes the per-channel sums
and sums of squares are summed over processes with gradients (``AllReduceSum``: its backward is the
adjoint, a sum of the incoming gradients), so the gradients equal those of one process on the
concatenated batch. Parameter and buffer names are BatchNorm's, so checkpoints load either way.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..distributed import world_size


class AllReduceSum(torch.autograd.Function):
    """Sum a tensor over every process; the gradient of each input is the sum of the output gradients."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        y = x.clone()
        dist.all_reduce(y)
        return y

    @staticmethod
    def backward(ctx, g: torch.Tensor) -> torch.Tensor:
        g = g.clone()
        dist.all_reduce(g)
        return g


class GlobalBatchNorm(_BatchNorm):
    """BatchNorm over (N, C) or (N, C, *) inputs whose training statistics span every process."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {x.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)
        if not self.training or world_size() == 1:
            return super().forward(x)
        dims = [0] + list(range(2, x.dim()))
        xf = x if x.dtype in (torch.float32, torch.float64) else x.float()   # half inputs: stats in fp32
        count = torch.full((1,), x.numel() / x.shape[1], dtype=xf.dtype, device=x.device)
        stats = AllReduceSum.apply(torch.cat([xf.sum(dims), (xf * xf).sum(dims), count]))  # (2C + 1,) summed
        c = x.shape[1]
        n = stats[-1]
        mean = stats[:c] / n
        var = (stats[c:2 * c] / n - mean * mean).clamp_min(0)                     # biased, for normalising
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / self.num_batches_tracked.item()
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * n / (n - 1).clamp_min(1), alpha=m)
        shape = [1, c] + [1] * (x.dim() - 2)
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def convert_global_bn(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm1d/2d/3d in ``module`` by a GlobalBatchNorm with the same state."""
    if isinstance(module, _BatchNorm) and not isinstance(module, GlobalBatchNorm):
        new = GlobalBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                              module.track_running_stats)
        state = module.state_dict()
        if state:
            new = new.to(next(iter(state.values())).device)
            new.load_state_dict(state)
        new.train(module.training)
        return new
    for name, child in module.named_children():
        setattr(module, name, convert_global_bn(child))
    return module

