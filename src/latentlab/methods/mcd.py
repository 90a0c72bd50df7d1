"""MCD: maximum classifier discrepancy between two classifiers on one feature generator.

Saito et al., "Maximum classifier discrepancy for unsupervised domain adaptation", CVPR 2018,
https://arxiv.org/abs/1712.02560.

    latentlab train mcd source=usps target=mnist

Chosen as the second successor because it aligns by a different mechanism from the adversarial domain
classifiers of DANN and CDAN: two task classifiers F1, F2 disagree on target samples far from the source's
support, the classifiers are trained to expose that disagreement and the generator to remove it, so target
features move inside the source's class regions instead of only matching the marginal distribution.
One step (Sec. 3.2, with d the mean absolute difference of the two softmax outputs, eq. 1):
    A:  (G, F1, F2) <- min CE(F1(G(x_s)), y_s) + CE(F2(G(x_s)), y_s)
    B:  (F1, F2)    <- min CE(F1, y_s) + CE(F2, y_s) - d(F1(G(x_t)), F2(G(x_t)))     G fixed
    C:  G           <- min d(F1(G(x_t)), F2(G(x_t))), ``num_k`` times (paper's digits: 4)   F1, F2 fixed
Defaults of the authors' digit code: Adam 2e-4 at a constant rate, classifiers dropout - fc 100 - BN - fc 100
- BN - fc classes on the generator's features; the generator is the task's digit network (``methods/_domain.py``:
LeNet or the DANN network), not the authors' conv net with BatchNorm. Predictions are the two classifiers' mean
softmax.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import param
from ..engine.method import register_method
from ..losses.domain import classifier_discrepancy
from ..nets.ema import frozen_copy
from ._domain import DAConfig, DAMethod


@dataclass
class MCDConfig(DAConfig):
    lr: float = param(2e-4, gt=0, help="Adam rate (the authors' digits: 2e-4)")
    lr_schedule: str = param("constant", choices=("annealed", "constant"), help="the authors keep it constant")
    weight_decay: float = param(5e-4, ge=0, help="Adam weight decay (the authors' 5e-4)")
    num_k: int = param(4, ge=1, help="generator updates of step C per step (paper's digits: 4)")
    head_hidden: tuple[int, ...] = param((100, 100), ge=1, help="classifier hidden widths (authors' digit code)")
    head_dropout: float = param(0.5, ge=0, lt=1, help="dropout before each classifier layer's input")


def classifier(in_dim: int, hidden: tuple[int, ...], classes: int, dropout: float) -> nn.Sequential:
    layers, d = [], in_dim
    for h in hidden:
        layers += [nn.Dropout(dropout), nn.Linear(d, h), nn.BatchNorm1d(h), nn.ReLU(inplace=True)]
        d = h
    return nn.Sequential(*layers, nn.Linear(d, classes))


@register_method
class MCD(DAMethod):
    name = "mcd"
    summary = "Domain adaptation: two classifiers' discrepancy on the target, maximised then minimised (MCD)"
    paper = "Saito et al. 2018, Maximum classifier discrepancy for unsupervised domain adaptation"
    Config = MCDConfig
    trainable = ("backbone", "head", "head2")

    def __init__(self, cfg: MCDConfig):
        super().__init__(cfg)
        f, k = self.backbone.num_features, self.num_classes
        self.head = classifier(f, cfg.head_hidden, k, cfg.head_dropout)              # F1
        self.head2 = classifier(f, cfg.head_hidden, k, cfg.head_dropout)             # F2
        self.best = frozen_copy(nn.ModuleDict({"backbone": self.backbone, "head": self.head, "head2": self.head2}))

    def configure_optimizers(self):
        c = self.cfg
        adam = lambda *ms: torch.optim.Adam([p for m in ms for p in m.parameters()], lr=c.lr,  # noqa: E731
                                            weight_decay=c.weight_decay)
        return {"generator": adam(self.backbone), "classifiers": adam(self.head, self.head2)}

    def logits(self, nets_, x):
        f = nets_["backbone"](x)
        return ((nets_["head"](f).softmax(1) + nets_["head2"](f).softmax(1)) / 2).log()   # mean softmax

    def source_loss(self, fs: torch.Tensor, ys: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        l1, out = self.classification(self.head(fs), ys)
        return l1 + F.cross_entropy(self.head2(fs), ys), out

    def discrepancy(self, ft: torch.Tensor) -> torch.Tensor:
        return classifier_discrepancy(self.head(ft).softmax(1), self.head2(ft).softmax(1))

    def adapt_step(self, batch, step):
        xs, ys, xt = self.inputs(batch)
        loss_a, out = self.source_loss(self.backbone(xs), ys)                     # A: both classifiers on source
        self.optimize(("generator", "classifiers"), loss_a)
        with torch.no_grad():                                                    # B: G fixed
            f = self.backbone(torch.cat([xs, xt]))                               # (2B, F)
        b = len(xs)
        loss_s, _ = self.source_loss(f[:b], ys)
        d_b = self.discrepancy(f[b:])
        self.optimize("classifiers", loss_s - d_b)                               # maximise d on the target
        for _ in range(self.cfg.num_k):                                          # C: F1, F2 fixed
            d_c = self.discrepancy(self.backbone(xt))
            self.optimize("generator", d_c)                                      # minimise d
        return {"loss": loss_a.item(), **out, "discrepancy_b": d_b.item(), "discrepancy_c": d_c.item()}
