"""Shuffle and Learn: verify whether three frames of a video are in the correct temporal order.

Misra et al., "Shuffle and learn: unsupervised learning using temporal order verification", ECCV 2016,
https://arxiv.org/abs/1603.08561. From 5 frames (a, b, c, d, e) of a clip, positives are (b, c, d) and
(d, c, b), negatives (b, a, d) and (b, e, d); the three frames go through the shared encoder, their
features are concatenated and a classifier makes the binary decision (Sec. 3: one fc layer; here a
2-layer MLP, since "is the middle frame between the others" is not linear in position-coding features). The clips are moving
MNIST videos of the training digits made by ``data.moving_mnist`` (one digit moving +-margin pixels).
``order_accuracy`` (a monitor, and ``latentlab eval RUN protocol=order``) measures the order verification on
``eval_clips`` fixed clips of held-out validation digits, each in order with probability 1/2: the pretext task on
unseen clips.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import param
from ..data.moving_mnist import sample_videos
from ..modules import eval_mode, unwrap
from ..results import EvalResult
from ._ssl import SSLConfig, SSLMethod
from ..engine.method import register_method

POSITIVE = ((1, 2, 3), (3, 2, 1))
NEGATIVE = ((1, 0, 3), (1, 4, 3))


@dataclass
class TemporalOrderConfig(SSLConfig):
    batch_size: int = param(128, ge=2, help="clips (frame triplets) per step")
    lr: float = param(3e-4, gt=0, help="Adam rate: 3e-4, chosen on the held-out validation clips (at the other "
                                       "methods' 1e-3 the order classifier can stay at chance: loss log 2 throughout)")
    positive_fraction: float = param(0.5, gt=0, lt=1, help="fraction of correctly ordered triplets")
    margin_fraction: float = param(0.2, gt=0, lt=1, help="digit moves within +-this fraction of the image size")
    max_speed: float = param(3.0, ge=1, help="pixels per frame")
    hidden: int = param(512, ge=1, help="hidden width of the order classifier")
    eval_clips: int = param(2000, ge=2, help="held-out clips (validation digits, fixed seed) for the order accuracy")


@register_method
class TemporalOrder(SSLMethod):
    name = "temporal_order"
    summary = "Pretext task: is a frame triplet of a moving-MNIST clip in temporal order?"
    paper = "Misra et al. 2016, Shuffle and learn: unsupervised learning using temporal order verification"
    Config = TemporalOrderConfig
    trainable = ("backbone", "order_head")
    protocols = ("linear", "knn", "retrieval", "order")

    def __init__(self, cfg: TemporalOrderConfig):
        super().__init__(cfg)
        self.order_head = nn.Sequential(nn.Linear(3 * self.feat_dim, cfg.hidden), nn.ReLU(inplace=True),
                                        nn.Linear(cfg.hidden, 2))

    def triplets(self, images: torch.Tensor, positive_fraction: float, generator: torch.Generator | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 (B, C, S, S) -> frame triplets (B, 3, C, S, S) of fresh clips and labels (B,) (1 = in order)."""
        c, s = self.cfg, self.img_shape[1]
        video = sample_videos(images, 5, max(1, round(c.margin_fraction * s)), generator, c.max_speed)  # (B, 5, C, S, S)
        b = len(video)
        label = (torch.rand(b, generator=generator) < positive_fraction).long()
        which = torch.randint(2, (b,), generator=generator)
        order = torch.where(label[:, None].bool(), torch.tensor(POSITIVE)[which], torch.tensor(NEGATIVE)[which])
        return video[torch.arange(b)[:, None], order], label

    def order_logits(self, backbone, head, frames: torch.Tensor) -> torch.Tensor:
        b = len(frames)
        x = self.prepare_images(frames.flatten(0, 1)).to(next(head.parameters()).dtype)   # (float64 under 64-true)
        f = backbone(x).view(b, -1)                                              # (B, 3F)
        return head(f)                                                           # (B, 2)

    def training_step(self, batch, step):
        frames, label = self.triplets(batch["x"], self.cfg.positive_fraction)
        logits = self.order_logits(self.backbone, self.order_head, frames)
        y = label.to(self.device)
        loss = F.cross_entropy(logits, y)
        self.optimize("model", loss)
        return {"loss": loss.item(), "order_acc": (logits.argmax(1) == y).float().mean().item()}

    @torch.no_grad()
    def order_accuracy(self) -> dict[str, float]:
        """Order-verification accuracy (%) on ``eval_clips`` fixed clips of held-out validation digits (each in
        order with probability 1/2, chance 50%): the pretext task on digits and motions never trained on."""
        ds = self.val_set if len(self.val_set) else self.test_set
        x = ds.images[torch.arange(self.cfg.eval_clips) % len(ds)]
        frames, label = self.triplets(x, 0.5, torch.Generator().manual_seed(54_321))
        nets_ = unwrap(self.backbone), unwrap(self.order_head)
        with eval_mode(*nets_):
            correct = sum((self.order_logits(*nets_, frames[i:i + 500]).argmax(1).cpu() == label[i:i + 500])
                          .sum().item() for i in range(0, len(x), 500))
        return {"order_heldout": 100.0 * correct / len(x)}

    def monitors(self):
        return {**super().monitors(), "order": (self.cfg.knn_every, self.order_accuracy)}

    def evaluate(self, protocol=None):
        if protocol == "order":
            return EvalResult(self.order_accuracy(), {"name": "order", "clips": self.cfg.eval_clips, "chance": 50.0,
                                                      "split": "validation digits (held out from train), fixed clips",
                                                      "step": self.step})
        return super().evaluate(protocol)

    def images(self):
        v = sample_videos(self.train_set.images[:8], 5, max(1, round(self.cfg.margin_fraction * self.img_shape[1])),
                          torch.Generator().manual_seed(0))
        return {"clips": v.flatten(0, 1).float() / 255}
