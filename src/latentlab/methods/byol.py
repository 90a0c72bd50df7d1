"""BYOL: an online network predicts a slowly moving target network's projection of another view.

Grill et al., "Bootstrap your own latent", NeurIPS 2020, https://arxiv.org/abs/2006.07733.
Defaults: projector and predictor MLPs 4096 -> 256, target momentum tau_base = 0.996 raised to 1 by
a cosine schedule (Sec. 3.3), asymmetric augmentations (blur 1.0/0.1, solarize 0/0.2), symmetric loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import param
from ..data import augment as aug
from ..losses import byol_loss
from ..nets.heads import PredictionHead, ProjectionHead
from ..nets.ema import ema_update
from ._ssl import SSLConfig, SSLMethod, cosine_momentum, frozen_copy
from ..engine.method import register_method


@dataclass
class BYOLConfig(SSLConfig):
    base_momentum: float = param(0.996, ge=0, le=1, help="tau_base of the target EMA")
    schedule_steps: int = param(0, ge=0, help="length of the cosine momentum schedule (0: steps)")
    proj_hidden: int = param(4096, ge=1, help="projector/predictor hidden width")
    proj_dim: int = param(256, ge=1, help="projection dimension")


@register_method
class BYOL(SSLMethod):
    name = "byol"
    summary = "Online network predicts an EMA target's projection (no negatives)"
    paper = "Grill et al. 2020, Bootstrap your own latent"
    Config = BYOLConfig
    trainable = ("backbone", "projector", "predictor")

    def __init__(self, cfg: BYOLConfig):
        super().__init__(cfg)
        self.projector = ProjectionHead(self.feat_dim, (cfg.proj_hidden,), cfg.proj_dim)
        self.predictor = PredictionHead(cfg.proj_dim, (cfg.proj_hidden,), cfg.proj_dim)
        self.target_backbone, self.target_projector = frozen_copy(self.backbone), frozen_copy(self.projector)
        self.pipes = aug.byol_pair(cfg.augment, self.img_shape[1:], self.img_shape[0])

    def training_step(self, batch, step):
        x1, x2 = self.views(batch["x"], *self.pipes)
        b = len(x1)
        x = torch.cat([x1, x2], 0)                                           # (2B, C, H, W)
        p = self.predictor(self.projector(self.backbone(x)))                 # (2B, D)
        with torch.no_grad():
            z = self.target_projector(self.target_backbone(x))              # (2B, D)
        loss = byol_loss(p[:b], z[b:]) + byol_loss(p[b:], z[:b])
        self.optimize("model", loss)
        tau = cosine_momentum(self.cfg.base_momentum, step, self.cfg.schedule_steps or self.cfg.steps)
        ema_update(self.target_backbone, self.backbone, tau)
        ema_update(self.target_projector, self.projector, tau)
        return {"loss": loss.item(), "tau": tau}
