"""Supervised classification with a ConvNet from the ``nets`` registry.

LeCun et al., "Gradient-based learning applied to document recognition", Proc. IEEE 1998.
The trained network doubles as the frozen feature network for FID/KID on its dataset.
A validation split is held out from train (model selection never looks at test).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .. import nets
from ..config import TrainConfig, param, require
from ..data import load_dataset
from ..engine.batches import ShuffledBatches
from ..engine.method import Method, register_method
from ..results import EvalResult


@dataclass
class SupervisedConfig(TrainConfig):
    dataset: str = param("digits", help="dataset name or path")
    steps: int = param(2000, ge=1)
    batch_size: int = param(64, ge=1)
    lr: float = param(1e-3, gt=0, help="Adam learning rate (the peak rate with lr_schedule=onecycle)")
    lr_schedule: str = param("constant", choices=("constant", "onecycle"),
                             help="constant, or onecycle (Smith & Topin 2019: warm-up over 30% of the steps to lr, "
                                  "cosine anneal to lr/1e4; torch's OneCycleLR defaults)")
    optimizer: str = param("adam", choices=("adam", "sgd"), help="adam, or sgd with momentum")
    momentum: float = param(0.9, ge=0, lt=1, help="SGD momentum")
    weight_decay: float = param(0.0, ge=0)
    net: str = param("convnet", help="backbone from the nets registry")
    width: int = param(32, ge=1, help="channels of the first conv layer")
    num_features: int = param(128, ge=1, help="feature (penultimate) dimension")
    dropout: float = param(0.0, ge=0, lt=1)
    val_fraction: float = param(0.1, ge=0, lt=1, help="part of train held out for validation")
    eval_batch_size: int = param(1000, ge=1)
    log_every: int = param(100, ge=1)
    image_every: int = param(0, ge=0)

    def check(self):
        require(self.net in nets.list_nets("backbone"), "net", self.net, f"not one of {nets.list_nets('backbone')}")


@torch.no_grad()
def accuracy(model, images: torch.Tensor, labels: torch.Tensor, prepare, batch_size: int = 1000) -> float:
    was = model.training
    model.eval()
    correct = 0
    for i in range(0, len(images), batch_size):
        logits = model(prepare(images[i:i + batch_size]))
        correct += (logits.argmax(1).cpu() == labels[i:i + batch_size]).sum().item()
    model.train(was)
    return correct / max(1, len(images))


@register_method
class Supervised(Method):
    protocols = ("linear", "knn", "retrieval")
    name = "supervised"
    summary = "Supervised ConvNet classifier; also the frozen feature network for FID/KID"
    paper = "LeCun et al. 1998, Gradient-based learning applied to document recognition"
    Config = SupervisedConfig
    trainable = ("model",)

    def __init__(self, cfg: SupervisedConfig):
        super().__init__(cfg)
        full = load_dataset(cfg.dataset, "train", cfg.data_dir)
        self.test_set = load_dataset(cfg.dataset, "test", cfg.data_dir)
        self.train_set, self.val_set = full.train_val(cfg.val_fraction, cfg.seed)
        c, h, w = full.shape
        self.model = nets.create(cfg.net, in_chans=c, img_size=h, num_classes=full.num_classes,
                                 width=cfg.width, num_features=cfg.num_features, dropout=cfg.dropout)

    def configure_optimizers(self):
        c = self.cfg
        if c.optimizer == "sgd":
            return {"model": torch.optim.SGD(self.model.parameters(), lr=c.lr, momentum=c.momentum,
                                             weight_decay=c.weight_decay)}
        return {"model": torch.optim.Adam(self.model.parameters(), lr=c.lr, weight_decay=c.weight_decay)}

    def configure_schedulers(self):
        if self.cfg.lr_schedule == "onecycle":
            return {"model": torch.optim.lr_scheduler.OneCycleLR(self.optimizers["model"], max_lr=self.cfg.lr,
                                                                 total_steps=self.cfg.steps)}
        return {}

    def batches(self, rank, world):
        return ShuffledBatches({"x": self.train_set.images, "y": self.train_set.labels},
                               self.cfg.batch_size, self.cfg.seed, rank, world)

    def training_step(self, batch, step):
        x, y = self.prepare_images(batch["x"]), batch["y"].to(self.device)
        logits = self.model(x)                                   # (B, classes)
        loss = F.cross_entropy(logits, y)
        self.optimize("model", loss)                           # (the engine steps OneCycleLR: `steps` rates)
        return {"loss": loss.item(), "train_acc": (logits.argmax(1) == y).float().mean().item()}

    def encoder(self):
        return self.model

    def evaluate(self, protocol=None) -> EvalResult:
        acc = lambda ds: accuracy(self.model, ds.images, ds.labels, self.prepare_images, self.cfg.eval_batch_size)
        metrics = {"test_accuracy": acc(self.test_set)}
        if len(self.val_set):
            metrics["val_accuracy"] = acc(self.val_set)
        return EvalResult(metrics, {"dataset": self.cfg.dataset, "net": self.cfg.net, "step": self.step,
                                    "test_split": "test", "n_test": len(self.test_set),
                                    "val_split": f"{self.cfg.val_fraction:g} of train (seed {self.cfg.seed})",
                                    "n_val": len(self.val_set), "selection": "last step (no test-set selection)"})
