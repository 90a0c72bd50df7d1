"""Context prediction: given the centre tile and one of its 8 neighbours, predict the neighbour's position.

Doersch et al., "Unsupervised visual representation learning by context prediction", ICCV 2015,
https://arxiv.org/abs/1505.05192. Tiles of a 3x3 grid with a gap and random jitter (a random crop of 3/4
of each cell). A choice for 28-32 px images, not the paper's: the gap comes from the crop alone, so with
jitter two neighbouring tiles can touch (gap 0 to half a cell); the paper keeps a gap of about half a
patch plus up to 7 px jitter, which at 28 px would leave 3-pixel tiles. Both tiles are encoded by the
shared encoder (resized to its input size); their features are concatenated and an MLP (after the
paper's fc6-fc9 pair network, narrower) classifies the 8 relative positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import param
from ._ssl import SSLConfig, SSLMethod, patch_grid
from ..engine.method import register_method

NEIGHBOURS = (0, 1, 2, 3, 5, 6, 7, 8)   # row-major tiles around the centre (4): label = position in this list


@dataclass
class ContextConfig(SSLConfig):
    batch_size: int = param(128, ge=2, help="image pairs per step")
    hidden: int = param(512, ge=1, help="hidden width of the pair classifier (the paper: fc7, fc8 of 4096)")


@register_method
class Context(SSLMethod):
    name = "context"
    summary = "Pretext task: relative position (8-way) of a patch with respect to the centre patch"
    paper = "Doersch et al. 2015, Unsupervised visual representation learning by context prediction"
    Config = ContextConfig
    trainable = ("backbone", "pair_head")

    def __init__(self, cfg: ContextConfig):
        super().__init__(cfg)
        self.pair_head = nn.Sequential(nn.Linear(2 * self.feat_dim, cfg.hidden), nn.ReLU(inplace=True),
                                       nn.Linear(cfg.hidden, 8))

    def training_step(self, batch, step):
        (x,) = self.views(batch["x"], self.view)
        tiles = patch_grid(x)                                                    # (B, 9, C, H, W)
        b = len(x)
        label = torch.randint(8, (b,), device=x.device)                          # (B,)
        nb = torch.tensor(NEIGHBOURS, device=x.device)[label]
        ar = torch.arange(b, device=x.device)
        pair = torch.cat([tiles[:, 4], tiles[ar, nb]], 0)                        # (2B, C, H, W)
        f = self.backbone(pair)
        logits = self.pair_head(torch.cat([f[:b], f[b:]], 1))                    # (B, 8)
        loss = F.cross_entropy(logits, label)
        self.optimize("model", loss)
        return {"loss": loss.item(), "pos_acc": (logits.argmax(1) == label).float().mean().item()}
