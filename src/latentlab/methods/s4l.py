"""S4L-Rotation: semi-supervised learning = supervised loss on a few labels + rotation prediction on all.

Zhai et al., "S4L: Self-supervised semi-supervised learning", ICCV 2019, https://arxiv.org/abs/1905.03670.
Loss = L_sup(labelled batch) + w * L_rot(unlabelled batch and labelled batch), w = 1 (Sec. 3.1); the
labelled and unlabelled batches have the same size, as in the paper.
The labelled subset is ``labels_per_class`` images per class taken (seeded) from the train split; the
validation split is never used for training. Its own evaluation adds the classifier's test accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import param
from ..engine.method import register_method
from ..results import EvalResult
from .rotnet import RotNet, RotNetConfig
from .supervised import accuracy


@dataclass
class S4LConfig(RotNetConfig):
    labels_per_class: int = param(10, ge=1, help="labelled train images per class "
                                                 "(S4L: 1% or 10% of ImageNet, about 13 or 128)")
    labeled_batch_size: int = param(256, ge=1, help="labelled images per step (the paper: as many as the "
                                    "unlabelled batch, `batch_size` 256 here)")
    rotation_weight: float = param(1.0, ge=0, help="w, the weight of the rotation loss")


class _Classifier(nn.Module):
    def __init__(self, backbone, head):
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, x):
        return self.head(self.backbone(x))


@register_method
class S4L(RotNet):
    name = "s4l"
    summary = "Semi-supervised: rotation prediction + supervised loss on labels_per_class labels"
    paper = "Zhai et al. 2019, S4L: Self-supervised semi-supervised learning"
    Config = S4LConfig
    trainable = ("backbone", "rot_head", "cls_head")

    def __init__(self, cfg: S4LConfig):
        super().__init__(cfg)
        self.cls_head = nn.Linear(self.feat_dim, self.train_set.num_classes)
        g = torch.Generator().manual_seed(cfg.seed)
        perm = torch.randperm(len(self.train_set), generator=g)
        y = self.train_set.labels[perm]
        self.labeled_idx = torch.cat([perm[y == c][:cfg.labels_per_class] for c in range(self.train_set.num_classes)])

    def training_step(self, batch, step):
        c = self.cfg
        pick = self.labeled_idx[torch.randint(len(self.labeled_idx), (c.labeled_batch_size,))]
        xl, yl = self.train_set.images[pick], self.train_set.labels[pick].to(self.device)
        (xu,) = self.views(batch["x"], self.view)
        (xl,) = self.views(xl, self.view)
        rot, rot_acc = self.rotation_loss(torch.cat([xu, xl], 0))
        logits = self.cls_head(self.backbone(xl))                          # (Bl, classes)
        sup = F.cross_entropy(logits, yl)
        loss = sup + c.rotation_weight * rot
        self.optimize("model", loss)
        return {"loss": loss.item(), "sup_loss": sup.item(), "rot_loss": rot.item(), "rot_acc": rot_acc}

    def evaluate(self, protocol=None) -> EvalResult:
        res = super().evaluate(protocol)
        if protocol is None:
            clf = _Classifier(self.backbone, self.cls_head)
            res.metrics["classifier_test_accuracy"] = accuracy(clf, self.test_set.images, self.test_set.labels,
                                                               self.prepare_images)
            res.protocol["labels"] = f"{self.cfg.labels_per_class} per class ({len(self.labeled_idx)} labels)"
        return res
