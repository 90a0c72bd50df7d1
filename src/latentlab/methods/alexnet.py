"""AlexNet trained with the paper's recipe, with test-time augmentation.

Krizhevsky, Sutskever & Hinton, "ImageNet classification with deep convolutional neural networks",
NeurIPS 2012. Recipe (the defaults below): SGD lr 0.01, momentum 0.9, batch 128, weight decay 5e-4,
dropout 0.5 on fc6/fc7, LRN after conv1/conv2, the learning rate divided by 10 when the validation
error stops improving; training on random crops + horizontal flips (the paper's PCA colour noise,
Sec. 4.1, is not applied); at test time the softmax predictions of 5 crops (4 corners + centre) and
their flips are averaged.

The paper trains on 224 crops of 256 px images; here ``crop_size`` crops of the (optionally
``resize``d) images, e.g. 28 of 32 px for MNIST-M with ``net=alexnet_small``.
The validation split is held out from train; test is only read by ``evaluate``.
``pretrained=FILE.pth`` loads a torchvision AlexNet file (weights_only) and ``freeze=true`` trains only
fc8 on top of it: the frozen ImageNet encoder, usable by every retrieval/visualisation command.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .. import nets
from ..config import TrainConfig, param, require
from ..data import load_dataset
from ..engine.batches import ShuffledBatches
from ..errors import ConfigError
from ..nets.alexnet import load_torchvision_alexnet
from ..engine.method import Method, register_method
from ..results import EvalResult


@dataclass
class AlexNetConfig(TrainConfig):
    dataset: str = param("mnist_m", help="dataset name or path")
    steps: int = param(20000, ge=1, help="SGD steps (the paper: about 90 epochs of ImageNet, ~850k at batch 128)")
    batch_size: int = param(128, ge=1)
    lr: float = param(0.01, gt=0, help="SGD learning rate")
    momentum: float = param(0.9, ge=0, lt=1)
    weight_decay: float = param(5e-4, ge=0)
    net: str = param("alexnet_small", choices=("alexnet", "alexnet_small"))
    dropout: float = param(0.5, ge=0, lt=1, help="dropout on the two hidden FC layers")
    lrn: bool = param(True, help="local response normalisation after conv1 and conv2")
    resize: int | None = param(None, ge=8, help="resize images to this size first (e.g. 256 for net=alexnet)")
    crop_size: int = param(28, ge=8, help="random training crop; test uses the centre crop / 5 crops")
    flip: bool = param(True, help="random horizontal flips in training (and flipped test crops)")
    val_fraction: float = param(0.05, gt=0, lt=1, help="part of train held out for validation")
    val_every: int = param(500, ge=1, help="steps between validation errors (LR schedule)")
    plateau_patience: int = param(2, ge=0, help="validations without improvement before lr /= 10")
    lr_factor: float = param(0.1, gt=0, lt=1, help="factor applied to lr on a plateau")
    pretrained: str | None = param(None, help="torchvision AlexNet .pth to start from (net=alexnet)")
    freeze: bool = param(False, help="with pretrained: train fc8 only (frozen encoder)")
    test_subset: int | None = param(None, ge=1, help="evaluate on a fixed (seed 0) subset of this many test "
                                    "images (None: the whole test split)")
    eval_batch_size: int = param(500, ge=1)
    log_every: int = param(100, ge=1)
    image_every: int = param(1000, ge=0)

    def check(self):
        require(self.pretrained is None or self.net == "alexnet", "pretrained", self.pretrained,
                "a torchvision file needs net=alexnet")
        require(not self.freeze or self.pretrained is not None, "freeze", self.freeze, "needs pretrained=FILE")


def random_crop_flip(x: torch.Tensor, size: int, flip: bool) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, size, size): one random crop (and coin-flip mirror) per image.

    Uses the global torch RNG (checkpointed by the engine, so resume is exact)."""
    b, _, h, w = x.shape
    oy = torch.randint(0, h - size + 1, (b,))
    ox = torch.randint(0, w - size + 1, (b,))
    ar = torch.arange(size)
    rows = (oy[:, None] + ar).to(x.device)                                   # (B, size)
    cols = (ox[:, None] + ar)                                                # (B, size)
    if flip:
        mirror = torch.rand(b) < 0.5
        cols = torch.where(mirror[:, None], cols.flip(1), cols)
    cols = cols.to(x.device)
    bi = torch.arange(b, device=x.device)[:, None, None]
    out = x.permute(0, 2, 3, 1)[bi, rows[:, :, None], cols[:, None, :]]      # (B, size, size, C)
    return out.permute(0, 3, 1, 2).contiguous()


def five_crops(x: torch.Tensor, size: int) -> list[torch.Tensor]:
    """The 4 corner crops and the centre crop, the paper's test views."""
    h, w = x.shape[-2:]
    cy, cx = (h - size) // 2, (w - size) // 2
    offs = [(0, 0), (0, w - size), (h - size, 0), (h - size, w - size), (cy, cx)]
    return [x[..., y:y + size, xx:xx + size] for y, xx in offs]


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    return five_crops(x, size)[-1]


@register_method
class AlexNetMethod(Method):
    name = "alexnet"
    summary = "AlexNet with the paper's recipe: SGD, LRN, dropout, crops+flips, LR/10 on plateau, 10-view TTA"
    protocols = ("tta", "linear", "knn", "retrieval")
    plateau_metric = "val_error"                      # ReduceLROnPlateau on the validation error
    paper = "Krizhevsky et al. 2012, ImageNet classification with deep convolutional neural networks"
    Config = AlexNetConfig
    trainable = ("model",)

    def __init__(self, cfg: AlexNetConfig):
        super().__init__(cfg)
        full = load_dataset(cfg.dataset, "train", cfg.data_dir)
        self.test_set = load_dataset(cfg.dataset, "test", cfg.data_dir)
        if cfg.test_subset is not None and cfg.test_subset < len(self.test_set):
            keep = torch.randperm(len(self.test_set), generator=torch.Generator().manual_seed(0))[:cfg.test_subset]
            self.test_set = self.test_set.subset(keep.sort().values)
        self.train_set, self.val_set = full.train_val(cfg.val_fraction, cfg.seed)
        c, h, _ = full.shape
        side = cfg.resize or h
        if cfg.crop_size > side:
            raise ConfigError(f"config key 'crop_size' = {cfg.crop_size} is invalid: images are {side} px")
        if cfg.net == "alexnet" and cfg.crop_size < 63:
            raise ConfigError(f"config key 'crop_size' = {cfg.crop_size} is invalid: net=alexnet needs >= 63 px "
                              "(set resize=, e.g. resize=256 crop_size=224)")
        if cfg.net == "alexnet_small" and cfg.crop_size < 15:
            raise ConfigError(f"config key 'crop_size' = {cfg.crop_size} is invalid: alexnet_small needs >= 15 px")
        self.in_chans = 3 if cfg.pretrained else c
        if cfg.pretrained:
            self.model = load_torchvision_alexnet(cfg.pretrained, full.num_classes, lrn=cfg.lrn)
            self.model.classifier[0].p = self.model.classifier[3].p = cfg.dropout
        else:
            self.model = nets.create(cfg.net, in_chans=c, num_classes=full.num_classes, dropout=cfg.dropout,
                                     lrn=cfg.lrn)
        if cfg.freeze:
            for n, p in self.model.named_parameters():
                p.requires_grad_(n.startswith("classifier.6."))

    # -- inputs -----------------------------------------------------------------------------------
    def _resized(self, x_uint8: torch.Tensor) -> torch.Tensor:
        x = self.prepare_images(x_uint8)                                      # (B, C, H, W) in [0, 1]
        if x.shape[1] != self.in_chans:
            x = x.expand(-1, self.in_chans, -1, -1)
        if self.cfg.resize and x.shape[-1] != self.cfg.resize:
            x = F.interpolate(x, size=(self.cfg.resize, self.cfg.resize), mode="bilinear", antialias=True,
                              align_corners=False)
        return x

    def prepare_eval(self, x_uint8: torch.Tensor) -> torch.Tensor:
        """The single test view (centre crop): what the encoder sees in every generic protocol."""
        return center_crop(self._resized(x_uint8), self.cfg.crop_size)

    @torch.no_grad()
    def view_probs(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, C, H, W) -> (V, N, classes) softmax of the test views: 4 corners + centre crop
        (view 4 is the centre), then their mirror images if ``flip``."""
        was = self.model.training
        self.model.eval()
        out = []
        for i in range(0, len(images), self.cfg.eval_batch_size):
            views = five_crops(self._resized(images[i:i + self.cfg.eval_batch_size]), self.cfg.crop_size)
            if self.cfg.flip:
                views += [v.flip(-1) for v in views]
            out.append(torch.stack([self.model(v).softmax(1).cpu() for v in views]))
        self.model.train(was)
        return torch.cat(out, dim=1)

    @torch.no_grad()
    def predict_proba(self, images: torch.Tensor, tta: bool = False) -> torch.Tensor:
        """uint8 (N, C, H, W) -> (N, classes) softmax; ``tta``: mean over 5 crops and their flips."""
        if tta:
            return self.view_probs(images).mean(0)
        was = self.model.training
        self.model.eval()
        out = [self.model(center_crop(self._resized(images[i:i + self.cfg.eval_batch_size]), self.cfg.crop_size))
               .softmax(1).cpu() for i in range(0, len(images), self.cfg.eval_batch_size)]
        self.model.train(was)
        return torch.cat(out)

    # -- training ---------------------------------------------------------------------------------
    def configure_optimizers(self):
        c = self.cfg
        params = [p for p in self.model.parameters() if p.requires_grad]
        return {"model": torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)}

    def configure_schedulers(self):
        return {"model": torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizers["model"], mode="min", factor=self.cfg.lr_factor, patience=self.cfg.plateau_patience)}

    def batches(self, rank, world):
        return ShuffledBatches({"x": self.train_set.images, "y": self.train_set.labels},
                               self.cfg.batch_size, self.cfg.seed, rank, world)

    def training_step(self, batch, step):
        c = self.cfg
        x = random_crop_flip(self._resized(batch["x"]), c.crop_size, c.flip)  # (B, C, crop, crop)
        y = batch["y"].to(self.device)
        logits = self.model(x)                                                # (B, classes)
        loss = F.cross_entropy(logits, y)
        self.optimize("model", loss)
        logs = {"loss": loss.item(), "train_acc": (logits.argmax(1) == y).float().mean().item(),
                "lr": self.optimizers["model"].param_groups[0]["lr"]}
        return logs

    def monitors(self):                  # the engine steps the plateau scheduler on it (plateau_metric)
        return {"val": (self.cfg.val_every, self.val_error)}

    def val_error(self) -> dict[str, float]:
        """Top-1 validation error (deterministic: eval mode, no RNG)."""
        return {"val_error": 1.0 - self._accuracy(self.val_set)}

    def _accuracy(self, ds, tta: bool = False) -> float:
        p = self.predict_proba(ds.images, tta)
        return (p.argmax(1) == ds.labels).float().mean().item()

    def encoder(self):
        return self.model

    def images(self):
        from ..viz.filters import filter_grid
        return {"filters": filter_grid(self.model)}

    def evaluate(self, protocol=None) -> EvalResult:
        if protocol not in (None, "tta"):
            raise ConfigError(f"method 'alexnet' has no protocol '{protocol}' (own: tta; generic: see eval)")
        v = self.view_probs(self.test_set.images)                            # (V, N, classes)
        acc = lambda p: (p.argmax(1) == self.test_set.labels).float().mean().item()
        metrics = {"test_accuracy": acc(v[4]), "test_accuracy_tta": acc(v.mean(0))}
        if self.cfg.flip:                                                    # the crops alone, without mirrors
            metrics["test_accuracy_tta_crops"] = acc(v[:5].mean(0))
        metrics["val_accuracy"] = self._accuracy(self.val_set)
        views = 10 if self.cfg.flip else 5
        return EvalResult(metrics, {"dataset": self.cfg.dataset, "net": self.cfg.net, "step": self.step,
                                    "n_test": len(self.test_set), "test_subset": self.cfg.test_subset,
                                    "single_view": f"centre {self.cfg.crop_size} px crop",
                                    "tta": f"{views} views (4 corners + centre{' + flips' if self.cfg.flip else ''}), "
                                           "softmax averaged; tta_crops: the 5 crops only",
                                    "val_split": f"{self.cfg.val_fraction:g} of train (seed {self.cfg.seed})",
                                    "selection": "last step (no test-set selection)"})
