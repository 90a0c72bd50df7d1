"""RotNet: predict which of 4 rotations (0, 90, 180, 270 degrees) was applied to an image.

Gidaris et al., "Unsupervised representation learning by predicting image rotations", ICLR 2018,
https://arxiv.org/abs/1803.07728. All 4 rotated copies of every image go in the same batch (the
paper's best variant, Sec. 3.2); a linear rotation classifier sits on the encoder's features.
``randbit=n`` adds RandBit channels (``data/randbit.py``): they cannot tell a rotation, so unlike a
contrastive objective this one gains nothing from them (``benchmarks/ssl_randbit.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import param
from ..data.randbit import RANDBIT_HELP
from ._ssl import SSLConfig, SSLMethod
from .base import register_method


def rotate4(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, C, H, W) -> the 4 rotations stacked (4B, C, H, W) and their labels (4B,) in 0..3."""
    xs = torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(4)], 0)
    y = torch.arange(4, device=x.device).repeat_interleave(len(x))
    return xs.contiguous(memory_format=torch.channels_last) if x.is_contiguous(memory_format=torch.channels_last) \
        and not x.is_contiguous() else xs, y


@dataclass
class RotNetConfig(SSLConfig):
    randbit: int = param(0, ge=0, le=32, help=RANDBIT_HELP)


@register_method
class RotNet(SSLMethod):
    name = "rotnet"
    summary = "Pretext task: classify the rotation (0/90/180/270) of an image"
    paper = "Gidaris et al. 2018, Unsupervised representation learning by predicting image rotations"
    Config = RotNetConfig
    trainable = ("backbone", "rot_head")

    def __init__(self, cfg):
        super().__init__(cfg)
        self.rot_head = nn.Linear(self.feat_dim, 4)

    def rotation_loss(self, x: torch.Tensor) -> tuple[torch.Tensor, float]:
        xr, yr = rotate4(x)
        logits = self.rot_head(self.backbone(xr))                           # (4B, 4)
        return F.cross_entropy(logits, yr), (logits.argmax(1) == yr).float().mean().item()

    def training_step(self, batch, step):
        (x,) = self.views(batch["x"], self.view)
        loss, acc = self.rotation_loss(x)
        self.optimize("model", loss)
        return {"loss": loss.item(), "rot_acc": acc, **self.monitor(step)}
