"""DINO: self-distillation with no labels — a student matches a momentum teacher's centred, sharpened output.

Caron et al., "Emerging properties in self-supervised vision transformers", ICCV 2021,
https://arxiv.org/abs/2104.14294. Defaults: student/teacher temperatures 0.1/0.04, centre momentum 0.9,
teacher momentum 0.996 -> 1 (cosine), multi-crop 2 global (scale 0.4-1) + 6 local (0.05-0.4) views;
the teacher sees only the global views. Differences, for a CPU: K = 4096 prototypes (paper 65536;
its Table 9 shows 4096 a little lower), and local crops are rendered at the encoder's input size since
the ConvNet has a fixed input size, and BN in the head's MLP (the code's ``use_bn_in_head``; without it
the ConvNet's post-ReLU features make student and teacher collapse to the uniform output within a
few dozen steps). Teacher and centre are checkpointed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import param
from ..data import augment as aug
from ..losses import dino_center_update, dino_loss
from ..nets.heads import DINOHead
from ..nets.ema import ema_update
from ._ssl import SSLConfig, SSLMethod, cosine_momentum, frozen_copy
from ..engine.method import register_method


@dataclass
class DINOConfig(SSLConfig):
    batch_size: int = param(64, ge=2, help="images per step (each gives 2 + n_local views; DINO: 1024)")
    out_dim: int = param(4096, ge=2, help="K, the number of prototypes (paper 65536)")
    head_hidden: int = param(2048, ge=1, help="DINO head hidden width")
    bottleneck: int = param(256, ge=1, help="DINO head bottleneck")
    student_temp: float = param(0.1, gt=0, help="tau_s")
    teacher_temp: float = param(0.04, gt=0, help="tau_t")
    center_momentum: float = param(0.9, ge=0, lt=1, help="m of the centre EMA")
    base_momentum: float = param(0.996, ge=0, le=1, help="teacher EMA momentum at step 0 (cosine to 1)")
    schedule_steps: int = param(0, ge=0, help="length of the cosine momentum schedule (0: steps)")
    head_bn: bool = param(True, help="BatchNorm in the head MLP (DINO code: use_bn_in_head; see docstring)")
    n_local: int = param(6, ge=0, help="local crops per image (DINO's code: 8; its best runs 10)")


@register_method
class DINO(SSLMethod):
    name = "dino"
    summary = "Self-distillation: student matches a centred, sharpened momentum teacher on multi-crops"
    paper = "Caron et al. 2021, Emerging properties in self-supervised vision transformers"
    Config = DINOConfig
    trainable = ("backbone", "head")
    extra_state = ("center",)

    def __init__(self, cfg: DINOConfig):
        super().__init__(cfg)
        self.head = DINOHead(self.feat_dim, cfg.out_dim, cfg.head_hidden, cfg.bottleneck, use_bn=cfg.head_bn)
        self.teacher_backbone, self.teacher_head = frozen_copy(self.backbone), frozen_copy(self.head)
        self.center = torch.zeros(1, cfg.out_dim)
        self.pipes = aug.multicrop(cfg.augment, self.img_shape[1:], self.img_shape[0], cfg.n_local)

    def training_step(self, batch, step):
        c = self.cfg
        views = self.views(batch["x"], *self.pipes)                         # (2 + n_local) x (B, C, H, W)
        b = len(views[0])
        s = self.head(self.backbone(torch.cat(views, 0))).split(b)           # V x (B, K)
        with torch.no_grad():
            t = self.teacher_head(self.teacher_backbone(torch.cat(views[:2], 0))).split(b)  # 2 x (B, K)
        loss = dino_loss(list(s), list(t), self.center, c.student_temp, c.teacher_temp)
        self.optimize("model", loss)
        m = cosine_momentum(c.base_momentum, step, c.schedule_steps or c.steps)
        ema_update(self.teacher_backbone, self.backbone, m)
        ema_update(self.teacher_head, self.head, m)
        self.center = dino_center_update(self.center, list(t), c.center_momentum)
        return {"loss": loss.item(), "momentum": m}
