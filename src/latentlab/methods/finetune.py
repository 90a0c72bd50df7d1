"""Transfer learning: reuse another run's encoder on a target dataset with few labels.

    latentlab train finetune source=runs/sup dataset=usps labels_per_class=10 mode=finetune

``mode``:
    linear    the source encoder frozen (evaluation mode, no gradients), a linear classifier trained on its
              features (the linear-probe protocol)
    finetune  every layer trained from the source weights, the encoder at ``lr * backbone_lr_scale``
              (Yosinski et al., "How transferable are features in deep neural networks?", NeurIPS 2014)
    scratch   the source's architecture, initialised afresh, trained end to end (the baseline)

Target images are brought to the source's input: channels by luma (RGB -> grey) or repetition (grey -> RGB),
size by bilinear resizing, values in [0, 1]. The ``labels_per_class`` labelled images (seeded per ``seed``)
are drawn from the target's training part; a validation split held out from the target's train (labelled:
the usual few-label protocol, its size stated in the result) picks the checkpoint, the test split is read once.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .. import nets
from ..config import TrainConfig, param, require
from ..data import load_dataset
from ..data.convert import to_shape
from ..engine.batches import ShuffledBatches
from ..engine.method import Method, register_method
from ..errors import ConfigError
from ..eval.representation import get_encoder
from ..modules import reinitialise, unwrap
from ..nets.ema import frozen_copy
from ..results import EvalResult
from ._selection import initial_state, keep_if_better, last_step_check, validation_monitor


@dataclass
class FinetuneConfig(TrainConfig):
    source: str | None = param(None, help="run directory whose encoder() is reused (None: mode=scratch with net)")
    mode: str = param("auto", choices=("auto", "linear", "finetune", "scratch"),
                      help="auto: finetune when a source is given, scratch without one")
    dataset: str = param("usps", help="the target dataset")
    labels_per_class: int = param(0, ge=0, help="k labelled training images per class (0: all of them)")
    steps: int = param(500, ge=1)
    batch_size: int = param(64, ge=1, help="at most the number of labelled images")
    lr: float = param(1e-3, gt=0, help="Adam learning rate of the classifier (and of the encoder when fine-tuned)")
    backbone_lr_scale: float = param(1.0, gt=0, help="fine-tune: the encoder's rate is lr times this")
    weight_decay: float = param(0.0, ge=0)
    net: str = param("convnet", help="without a source: the backbone (nets registry) trained from scratch")
    width: int = param(16, ge=1, help="without a source: the backbone's width")
    num_features: int = param(128, ge=1, help="without a source: the backbone's feature width")
    val_fraction: float = param(0.1, gt=0, lt=1, help="part of the target's train held out for selection")
    val_samples: int = param(1000, ge=1, help="validation images measured at each check")
    val_every: int = param(100, ge=0, help="steps between validation checks (0: only the last step)")
    eval_batch_size: int = param(1000, ge=1)
    log_every: int = param(100, ge=1)
    image_every: int = param(0, ge=0)

    @property
    def reuse(self) -> str:
        """The mode in effect (``auto`` resolved)."""
        return self.mode if self.mode != "auto" else ("finetune" if self.source is not None else "scratch")

    def check(self):
        require(self.source is not None or self.reuse == "scratch", "source", self.source,
                f"mode={self.mode} needs a source run directory")


def few_labels(labels: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """Indices of ``k`` images per class (all of a class when it has fewer), drawn with ``seed``."""
    g = torch.Generator().manual_seed(30_000 + seed)
    picks = []
    for c in labels.unique():
        idx = (labels == c).nonzero().squeeze(1)
        picks.append(idx[torch.randperm(len(idx), generator=g)[:k]])
    return torch.cat(picks).sort().values


def _input_shape(encoder: nn.Module, dataset: str) -> tuple[int, int, int]:
    """The (C, H, W) an encoder was trained on: its ``in_chans`` / ``img_size``, else its dataset's shape."""
    if hasattr(encoder, "in_chans") and hasattr(encoder, "img_size"):
        return encoder.in_chans, encoder.img_size, encoder.img_size
    from ..data.registry import DATASETS
    if dataset not in DATASETS:
        raise ConfigError(f"config key 'source': cannot tell the input shape of an encoder trained on {dataset!r}")
    return DATASETS[dataset].shape


class Features(nn.Module):
    """An encoder whose ``forward`` is its ``forward_features`` (so the engine's wrapper runs it: device,
    precision); a classification head the source had is kept in the weights but not used."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net, self.num_features = net, net.num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_features(x)                            # (B, F)

    forward_features = forward


@register_method
class Finetune(Method):
    name = "finetune"
    summary = "Transfer: a run's encoder on a target set with k labels per class (linear / fine-tune / scratch)"
    paper = "Yosinski et al. 2014, How transferable are features in deep neural networks?"
    Config = FinetuneConfig
    trainable = ("backbone", "head")
    extra_state = ("best_score", "best_step")
    protocols = ("linear", "knn")

    def __init__(self, cfg: FinetuneConfig):
        super().__init__(cfg)
        full = load_dataset(cfg.dataset, "train", cfg.data_dir)
        self.test_set = load_dataset(cfg.dataset, "test", cfg.data_dir)
        train, val = full.train_val(cfg.val_fraction, cfg.seed)
        self.val_set = val.subset(range(min(cfg.val_samples, len(val))))
        self.train_set = train.subset(few_labels(train.labels, cfg.labels_per_class, cfg.seed)) \
            if cfg.labels_per_class else train
        if cfg.source is not None:
            from pathlib import Path
            from ..engine.run import open_run, run_method_name
            if not (Path(cfg.source) / "config.yaml").is_file():
                raise ConfigError(f"config key 'source' = {cfg.source!r} is invalid: not a run directory (no config.yaml)")
            from . import get_method
            src = open_run(get_method(run_method_name(cfg.source)), cfg.source)
            backbone = copy.deepcopy(get_encoder(src)).cpu().train()
            self.source_shape = _input_shape(backbone, src.cfg.dataset)
            self.source_step = src.step
        else:
            c, h, _ = full.shape
            backbone = nets.create(cfg.net, in_chans=c, img_size=h, num_classes=0, width=cfg.width,
                                   num_features=cfg.num_features)
            self.source_shape, self.source_step = full.shape, None
        if cfg.reuse == "scratch":
            torch.manual_seed(cfg.seed)
            reinitialise(backbone)
        self.backbone = Features(backbone).requires_grad_(cfg.reuse != "linear")
        self.head = nn.Linear(backbone.num_features, full.num_classes)
        self.best = frozen_copy(nn.ModuleDict({"backbone": self.backbone, "head": self.head}))
        self.best_score, self.best_step = initial_state()

    def prepare_images(self, x):
        return to_shape(super().prepare_images(x), self.source_shape)

    def configure_optimizers(self):
        c = self.cfg
        groups = [{"params": self.head.parameters(), "lr": c.lr}]
        if c.reuse != "linear":
            groups.append({"params": self.backbone.parameters(),
                           "lr": c.lr * (c.backbone_lr_scale if c.reuse == "finetune" else 1.0)})
        return {"model": torch.optim.Adam(groups, weight_decay=c.weight_decay)}

    def batches(self, rank, world):
        return ShuffledBatches({"x": self.train_set.images, "y": self.train_set.labels},
                               min(self.cfg.batch_size, len(self.train_set)), self.cfg.seed, rank, world)

    def features(self, x):
        if self.cfg.reuse == "linear":
            self.backbone.eval()                                       # frozen: fixed statistics, no dropout
            with torch.no_grad():
                return self.backbone(x)
        return self.backbone(x)                                        # (B, F)

    def training_step(self, batch, step):
        x, y = self.prepare_images(batch["x"]), batch["y"].to(self.device)
        logits = self.head(self.features(x))                           # (B, classes)
        loss = F.cross_entropy(logits, y)
        self.optimize("model", loss)
        out = {"loss": loss.item(), "train_acc": (logits.argmax(1) == y).float().mean().item()}
        out.update(last_step_check(self, step))
        return out

    @torch.no_grad()
    def accuracy(self, backbone, head, ds) -> float:
        was = backbone.training, head.training
        backbone.eval(), head.eval()
        correct, dtype = 0, head.weight.dtype            # the plain modules: float64 under 64-true
        for i in range(0, len(ds), self.cfg.eval_batch_size):
            logits = head(backbone(self.prepare_images(ds.images[i:i + self.cfg.eval_batch_size]).to(dtype)))
            correct += (logits.argmax(1).cpu() == ds.labels[i:i + self.cfg.eval_batch_size]).sum().item()
        backbone.train(was[0]), head.train(was[1])
        return 100.0 * correct / max(1, len(ds))

    def validate(self, done: int | None = None) -> dict[str, float]:
        acc = self.accuracy(unwrap(self.backbone), unwrap(self.head), self.val_set)
        pair = nn.ModuleDict({"backbone": unwrap(self.backbone), "head": unwrap(self.head)})
        keep_if_better(self, pair, -acc, self.step if done is None else done)
        return {"val_accuracy": acc}

    def monitors(self):
        return validation_monitor(self)

    def chosen(self):
        """(backbone, head) of the selected checkpoint (the last weights before any check)."""
        if int(self.best_step) >= 0:
            b = unwrap(self.best)
            return b["backbone"], b["head"]
        return unwrap(self.backbone), unwrap(self.head)

    def encoder(self):
        return self.chosen()[0]

    def evaluate(self, protocol=None) -> EvalResult:
        backbone, head = self.chosen()
        c = self.cfg
        return EvalResult({"test_accuracy": self.accuracy(backbone, head, self.test_set),
                           "val_accuracy": self.accuracy(backbone, head, self.val_set)}, {
            "source": c.source, "source_step": self.source_step, "mode": c.reuse, "dataset": c.dataset,
            "labels_per_class": c.labels_per_class or "all", "n_train": len(self.train_set),
            "input": f"target images mapped to the source's {self.source_shape}",
            "val_split": f"{c.val_fraction:g} of the target's train (seed {c.seed}), first {len(self.val_set)}",
            "n_test": len(self.test_set),
            "selection": f"best validation accuracy every {c.val_every} steps (chosen step {int(self.best_step)}); "
                         "test never read for a choice", "step": self.step})
