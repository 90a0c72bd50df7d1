"""RotNet: predict which of 4 rotations (0, 90, 180, 270 degrees) was applied to an image.

Gidaris et al., "Unsupervised representation learning by predicting image rotations", ICLR 2018,
https://arxiv.org/abs/1803.07728. All rotated copies of every image go in the same batch (the
paper's best variant, Sec. 3.2); a linear rotation classifier sits on the encoder's features.
``angles`` picks the set of rotations: the paper compares 4 with 8 (multiples of 45 degrees) and with
2 (0/180 or 90/270) on CIFAR-10 and keeps 4. ``mirror=true`` (our addition, not the paper's) also
mirrors every rotated copy left-right, so the head tells apart 2 x len(angles) transformations:
``angles=[0] mirror=true`` is mirror prediction, 4 angles with the mirror the 8 symmetries of a square.
``randbit=n`` adds RandBit channels (``data/randbit.py``): they cannot tell a rotation, so unlike a
contrastive objective this one gains nothing from them (``benchmarks/ssl_randbit.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from kornia.geometry.transform import rotate
from torch import nn

from ..config import param, require
from ..data.randbit import RANDBIT_HELP
from ._ssl import SSLConfig, SSLMethod
from ..engine.method import register_method

ANGLES = tuple(range(0, 360, 45))


def transform_set(x: torch.Tensor, angles=(0, 90, 180, 270), mirror: bool = False
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, C, H, W) square images -> every transformed copy stacked (T B, C, H, W) and labels (T B,).

    T = len(angles) * (2 if mirror else 1); copy t is angle ``angles[t // m]`` counter-clockwise, then
    mirrored left-right when ``mirror`` and t is odd (m = 2). Multiples of 90 degrees are exact
    (``rot90``); a further 45 degrees is a bilinear rotation with zero corners, as in the paper's 8-way set.
    """
    copies = []
    for a in angles:
        xa = torch.rot90(x, a // 90, dims=(2, 3))
        if a % 90:
            xa = rotate(xa, torch.full((len(x),), 45.0, device=x.device, dtype=x.dtype))
        copies += [xa, torch.flip(xa, dims=(3,))] if mirror else [xa]
    xs = torch.cat(copies, 0)
    y = torch.arange(len(copies), device=x.device).repeat_interleave(len(x))
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        xs = xs.contiguous(memory_format=torch.channels_last)
    return xs, y


@dataclass
class RotNetConfig(SSLConfig):
    angles: tuple[int, ...] = param((0, 90, 180, 270), choices=ANGLES,
                                    help="rotations to tell apart, degrees counter-clockwise, multiples of 45")
    mirror: bool = param(False, help="also mirror each rotated copy left-right (2 x len(angles) classes)")
    randbit: int = param(0, ge=0, le=32, help=RANDBIT_HELP)

    @property
    def num_transforms(self) -> int:
        return len(self.angles) * (2 if self.mirror else 1)

    def check(self):
        super().check()
        require(len(set(self.angles)) == len(self.angles), "angles", list(self.angles), "angles repeat")
        require(self.num_transforms >= 2, "angles", list(self.angles),
                "fewer than 2 transformations to tell apart (give 2 angles or mirror=true)")


@register_method
class RotNet(SSLMethod):
    name = "rotnet"
    summary = "Pretext task: classify the rotation (0/90/180/270) of an image"
    paper = "Gidaris et al. 2018, Unsupervised representation learning by predicting image rotations"
    Config = RotNetConfig
    trainable = ("backbone", "rot_head")

    def __init__(self, cfg):
        super().__init__(cfg)
        self.rot_head = nn.Linear(self.feat_dim, cfg.num_transforms)

    def rotation_loss(self, x: torch.Tensor) -> tuple[torch.Tensor, float]:
        xr, yr = transform_set(x, self.cfg.angles, self.cfg.mirror)
        logits = self.rot_head(self.backbone(xr))                           # (T B, T)
        return F.cross_entropy(logits, yr), (logits.argmax(1) == yr).float().mean().item()

    def training_step(self, batch, step):
        (x,) = self.views(batch["x"], self.view)
        loss, acc = self.rotation_loss(x)
        self.optimize("model", loss)
        return {"loss": loss.item(), "rot_acc": acc}
