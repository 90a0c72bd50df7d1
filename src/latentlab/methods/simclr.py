"""SimCLR: two augmented views, a projection head, and the NT-Xent loss over the global batch.

Chen et al., "A simple framework for contrastive learning of visual representations", ICML 2020,
https://arxiv.org/abs/2002.05709. Under DDP the projections of every process are gathered *with
gradients* so the negatives are the whole global batch (``losses.nt_xent(gather=True)``).
``randbit=n`` appends Chen et al. 2021's RandBit channels (``data/randbit.py``): n bits per image that
both views share, to measure how easy shared features suppress the others (``benchmarks/ssl_randbit.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import param
from ..data.randbit import RANDBIT_HELP
from ..losses import nt_xent
from ..nets.heads import ProjectionHead
from ._ssl import SSLConfig, SSLMethod
from ..engine.method import register_method


@dataclass
class SimCLRConfig(SSLConfig):
    temperature: float = param(0.5, gt=0, help="NT-Xent temperature tau (paper's CIFAR-10 setting, App. B.9)")
    proj_hidden: int = param(2048, ge=1, help="projection MLP hidden width (the ResNet-50 feature width)")
    proj_dim: int = param(128, ge=1, help="projection output dimension z")
    randbit: int = param(0, ge=0, le=32, help=RANDBIT_HELP)


@register_method
class SimCLR(SSLMethod):
    name = "simclr"
    summary = "Contrastive views with NT-Xent over the (gathered) batch and a projection head"
    paper = "Chen et al. 2020, A simple framework for contrastive learning of visual representations"
    Config = SimCLRConfig
    trainable = ("backbone", "projector")

    def __init__(self, cfg: SimCLRConfig):
        super().__init__(cfg)
        self.projector = ProjectionHead(self.feat_dim, (cfg.proj_hidden,), cfg.proj_dim)

    def training_step(self, batch, step):
        x1, x2 = self.views(batch["x"])                                   # 2 x (B, C, H, W)
        b = len(x1)
        z = self.projector(self.backbone(torch.cat([x1, x2], 0)))              # (2B, proj_dim)
        loss = nt_xent(z[:b], z[b:], self.cfg.temperature)
        self.optimize("model", loss)
        return {"loss": loss.item()}

