"""Learning to see by moving: predict the camera motion between two views of one image.

Agrawal, Carreira & Malik, "Learning to see by moving", ICCV 2015, https://arxiv.org/abs/1505.01596. Their MNIST
experiment (Sec. 3.4): two views of a digit related by a translation in x, y and a rotation (``data.egomotion``),
each axis binned into classes. A Siamese base network (the backbone, shared by the two views; the paper's BCNN)
encodes each view, the two feature vectors are concatenated and a top network (their TCNN: one hidden layer of
1000 units here) feeds one softmax classifier per axis; the loss is the sum of the three cross-entropies. The base
network is the representation the few-label evaluations reuse (``finetune source=RUN``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import param
from ..data import augment as aug
from ..data.egomotion import AXES, motion_pairs
from ..engine.method import register_method
from ..modules import eval_mode, unwrap
from ..results import EvalResult
from ._ssl import SSLConfig, SSLMethod


@dataclass
class EgomotionConfig(SSLConfig):
    augment: str = param("none", choices=aug.PIPELINES,
                         help="no view augmentation: the motion between the two views is the task")
    max_shift: int = param(3, ge=1, help="shifts in whole pixels within +-this per axis (2 max_shift + 1 classes)")
    max_angle: float = param(30.0, gt=0, le=180, help="rotations within +-this, degrees")
    angle_bins: int = param(20, ge=2, help="rotation classes (bins of 2 max_angle / angle_bins degrees)")
    hidden: int = param(1000, ge=1, help="hidden units of the top network (TCNN)")
    dropout: float = param(0.5, ge=0, lt=1, help="dropout of the top network")
    eval_pairs: int = param(2000, ge=1, help="held-out validation pairs for the motion accuracy (fixed seed)")


class MotionHead(nn.Module):
    """(B, 2F) concatenated features -> {axis: (B, classes)}: one hidden layer, one linear classifier per axis."""

    def __init__(self, in_dim: int, hidden: int, classes: dict[str, int], dropout: float):
        super().__init__()
        self.top = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout))
        self.heads = nn.ModuleDict({a: nn.Linear(hidden, k) for a, k in classes.items()})

    def forward(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.top(h)
        return {a: head(z) for a, head in self.heads.items()}


@register_method
class Egomotion(SSLMethod):
    name = "egomotion"
    summary = "Pretext task: classify the translation and rotation between two views (learning by moving)"
    paper = "Agrawal, Carreira & Malik 2015, Learning to see by moving"
    Config = EgomotionConfig
    trainable = ("backbone", "motion_head")
    protocols = ("linear", "knn", "retrieval", "motion")

    def __init__(self, cfg: EgomotionConfig):
        super().__init__(cfg)
        n = 2 * cfg.max_shift + 1
        self.motion_head = MotionHead(2 * self.feat_dim, cfg.hidden, dict(zip(AXES, (n, n, cfg.angle_bins))),
                                      cfg.dropout)

    def pairs(self, x: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        c = self.cfg
        return motion_pairs(x, c.max_shift, c.max_angle, c.angle_bins, generator)

    def predict(self, backbone, head, p: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        b = len(p["first"])
        x = self.prepare_images(torch.cat([p["first"], p["second"]])).to(next(head.parameters()).dtype)
        f = backbone(x)                                                              # (2B, F)  BCNN, shared
        return head(torch.cat([f[:b], f[b:]], 1))                                    # (B, 2F) -> TCNN

    def training_step(self, batch, step):
        p = self.pairs(batch["x"])
        logits = self.predict(self.backbone, self.motion_head, p)
        y = p["labels"].to(self.device)
        losses = {a: F.cross_entropy(logits[a], y[:, i]) for i, a in enumerate(AXES)}
        loss = sum(losses.values())
        self.optimize("model", loss)
        return {"loss": loss.item(), **{f"acc_{a}": (logits[a].argmax(1) == y[:, i]).float().mean().item()
                                        for i, a in enumerate(AXES)}}

    @torch.no_grad()
    def motion_accuracy(self) -> dict[str, float]:
        """Per-axis accuracy on ``eval_pairs`` fixed pairs of held-out validation images (never trained on)."""
        ds = self.val_set if len(self.val_set) else self.test_set
        x = ds.images[:self.cfg.eval_pairs]
        p = self.pairs(x, torch.Generator().manual_seed(12_345))
        nets_ = unwrap(self.backbone), unwrap(self.motion_head)
        correct = {a: 0 for a in AXES}
        with eval_mode(*nets_):
            for i in range(0, len(x), 500):
                part = {k: v[i:i + 500] for k, v in p.items()}
                out = self.predict(*nets_, part)
                for j, a in enumerate(AXES):
                    correct[a] += (out[a].argmax(1).cpu() == part["labels"][:, j]).sum().item()
        return {f"motion_{a}": 100.0 * correct[a] / len(x) for a in AXES}

    def monitors(self):
        return {**super().monitors(), "motion": (self.cfg.knn_every, self.motion_accuracy)}

    def evaluate(self, protocol=None) -> EvalResult:
        if protocol == "motion":
            return EvalResult(self.motion_accuracy(), {"name": "motion", "pairs": self.cfg.eval_pairs,
                                                       "split": "validation images (held out from train)",
                                                       "step": self.step})
        return super().evaluate(protocol)

    def images(self):
        p = self.pairs(self.train_set.images[:8], torch.Generator().manual_seed(0))
        return {"pairs": torch.cat([p["first"], p["second"]]).float() / 255}
