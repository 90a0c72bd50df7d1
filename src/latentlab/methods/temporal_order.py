"""Shuffle and Learn: verify whether three frames of a video are in the correct temporal order.

Misra et al., "Shuffle and learn: unsupervised learning using temporal order verification", ECCV 2016,
https://arxiv.org/abs/1603.08561. From 5 frames (a, b, c, d, e) of a clip, positives are (b, c, d) and
(d, c, b), negatives (b, a, d) and (b, e, d); the three frames go through the shared encoder, their
features are concatenated and a classifier makes the binary decision (Sec. 3: one fc layer; here a
2-layer MLP, since "is the middle frame between the others" is not linear in position-coding features). The clips are moving
MNIST videos of the training digits made by ``data.moving_mnist`` (one digit moving +-margin pixels).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import param
from ..data.moving_mnist import sample_videos
from ._ssl import SSLConfig, SSLMethod
from ..engine.method import register_method

POSITIVE = ((1, 2, 3), (3, 2, 1))
NEGATIVE = ((1, 0, 3), (1, 4, 3))


@dataclass
class TemporalOrderConfig(SSLConfig):
    batch_size: int = param(128, ge=2, help="clips (frame triplets) per step")
    positive_fraction: float = param(0.5, gt=0, lt=1, help="fraction of correctly ordered triplets")
    margin_fraction: float = param(0.2, gt=0, lt=1, help="digit moves within +-this fraction of the image size")
    max_speed: float = param(3.0, ge=1, help="pixels per frame")
    hidden: int = param(512, ge=1, help="hidden width of the order classifier")


@register_method
class TemporalOrder(SSLMethod):
    name = "temporal_order"
    summary = "Pretext task: is a frame triplet of a moving-MNIST clip in temporal order?"
    paper = "Misra et al. 2016, Shuffle and learn: unsupervised learning using temporal order verification"
    Config = TemporalOrderConfig
    trainable = ("backbone", "order_head")

    def __init__(self, cfg: TemporalOrderConfig):
        super().__init__(cfg)
        self.order_head = nn.Sequential(nn.Linear(3 * self.feat_dim, cfg.hidden), nn.ReLU(inplace=True),
                                        nn.Linear(cfg.hidden, 2))

    def training_step(self, batch, step):
        c = self.cfg
        s = self.img_shape[1]
        video = sample_videos(batch["x"], 5, max(1, round(c.margin_fraction * s)), max_speed=c.max_speed)  # (B, 5, C, S, S)
        b = len(video)
        label = (torch.rand(b) < c.positive_fraction).long()                     # 1 = in order
        which = torch.randint(2, (b,))
        order = torch.where(label[:, None].bool(), torch.tensor(POSITIVE)[which], torch.tensor(NEGATIVE)[which])
        frames = video[torch.arange(b)[:, None], order]                          # (B, 3, C, S, S)
        x = self.prepare_images(frames.flatten(0, 1))
        f = self.backbone(x).view(b, -1)                                         # (B, 3F)
        logits = self.order_head(f)
        y = label.to(self.device)
        loss = F.cross_entropy(logits, y)
        self.optimize("model", loss)
        return {"loss": loss.item(), "order_acc": (logits.argmax(1) == y).float().mean().item()}

    def images(self):
        v = sample_videos(self.train_set.images[:8], 5, max(1, round(self.cfg.margin_fraction * self.img_shape[1])),
                          torch.Generator().manual_seed(0))
        return {"clips": v.flatten(0, 1).float() / 255}
