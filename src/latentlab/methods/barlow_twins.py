"""Barlow Twins: make the cross-correlation of two views' embeddings the identity.

Zbontar et al., "Barlow twins: self-supervised learning via redundancy reduction", ICML 2021,
https://arxiv.org/abs/2103.03230. lambda = 5e-3; a 3-layer projector (Linear-BN-ReLU x2, Linear).
The paper's projector is 8192-8192-8192 (135M parameters on top of the backbone); the default here is
its 2048-wide variant (paper Fig. 4: a few points lower on ImageNet) so the CPU budget trains the encoder.
Under DDP the embeddings are gathered (with gradients) so C is computed on the global batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import param, require
from ..losses import barlow_twins_loss, gather_with_grad
from ..nets.heads import ProjectionHead
from ._ssl import SSLConfig, SSLMethod
from ..engine.method import register_method


@dataclass
class BarlowTwinsConfig(SSLConfig):
    lambd: float = param(5e-3, ge=0, help="weight of the redundancy-reduction (off-diagonal) term")
    proj_dims: tuple[int, ...] = param((2048, 2048, 2048), help="projector layer widths (paper: 8192 x 3)")

    def check(self):
        super().check()
        require(len(self.proj_dims) >= 1 and min(self.proj_dims) >= 1, "proj_dims", self.proj_dims,
                "needs at least one positive width")


@register_method
class BarlowTwins(SSLMethod):
    name = "barlow_twins"
    summary = "Cross-correlation of two views' embeddings driven to the identity"
    paper = "Zbontar et al. 2021, Barlow twins: self-supervised learning via redundancy reduction"
    Config = BarlowTwinsConfig
    trainable = ("backbone", "projector")

    def __init__(self, cfg: BarlowTwinsConfig):
        super().__init__(cfg)
        d = tuple(cfg.proj_dims)
        self.projector = ProjectionHead(self.feat_dim, d[:-1], d[-1])

    def training_step(self, batch, step):
        x1, x2 = self.views(batch["x"])
        b = len(x1)
        z = self.projector(self.backbone(torch.cat([x1, x2], 0)))          # (2B, D)
        loss = barlow_twins_loss(gather_with_grad(z[:b]), gather_with_grad(z[b:]), self.cfg.lambd)
        self.optimize("model", loss)
        return {"loss": loss.item()}
