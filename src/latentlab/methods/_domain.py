"""Shared plumbing of the domain-adaptation methods (``source_only``, ``dann``, ``cdan``, ``mcd``, ``oracle``).

- ``DAConfig``: the keys every one has: the two domains, the common input, SGD with DANN's annealing, the
  validation cadence and the selection rule.
- ``DAMethod``: loads both domains and brings them to one input (``data.convert``: grey repeated to RGB when a
  domain is RGB, both resized to ``img_size``), streams ``{"source": {x, y}, "target": {x}}`` (each with its own
  seeded, checkpointed position), measures every validator at each check into ``history`` and keeps the
  checkpoint its ``selection`` rule prefers, and reports the target test accuracy each rule selects.

Data protocol: each domain's train split is cut into train and a held-out part (``val_fraction``, seeded): the
source's held-out part is labelled (source validation accuracy), the target's is read without labels by the
unsupervised validators. Target labels are read only for the ``target_test`` column, which no rule selects on;
its maximum over the checks is reported as the oracle-selected figure, labelled as such, to show the gap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .. import nets
from ..config import TrainConfig, param, require
from ..data import ImageDataset, load_dataset
from ..data.convert import convert_uint8
from ..engine.batches import ShuffledBatches, Streams, stream_seed
from ..engine.method import Method
from ..eval.domain import VALIDATORS, entropy_score, im_score, selected_row, snd_score
from ..modules import eval_mode, unwrap
from ..nets.digits import classifier_head
from ..nets.ema import frozen_copy
from ..results import EvalResult

COLUMNS = ("step", *VALIDATORS, "target_test")


def adaptation_factor(p: float, gamma: float = 10.0) -> float:
    """DANN's lambda_p = 2 / (1 + exp(-gamma p)) - 1, rising from 0 to ~1 as training progress p goes 0 -> 1
    (Ganin et al. 2016, Sec. 5.2.2: suppresses the domain classifier's noisy signal early on)."""
    return 2.0 / (1.0 + math.exp(-gamma * p)) - 1.0


def annealed_lr_factor(p: float, alpha: float = 10.0, beta: float = 0.75) -> float:
    """DANN's mu_p / mu_0 = 1 / (1 + alpha p)^beta (Ganin et al. 2016, Sec. 5.2.2)."""
    return (1.0 + alpha * p) ** -beta


@dataclass
class DAConfig(TrainConfig):
    source: str = param("mnist", help="the labelled source domain (a dataset name)")
    target: str = param("mnist_m", help="the target domain, whose training images are used without labels")
    dataset: str = param("", help="set from target (the domain the run is evaluated on); leave it unset")
    img_size: int = param(28, ge=16, help="both domains resized to this side (the papers' 28 px)")
    channels: int = param(0, ge=0, le=3, help="input channels (0: 3 when either domain is RGB, grey repeated; else 1)")
    net: str = param("auto", help="backbone: auto = dann_digits (the DANN paper's MNIST -> MNIST-M network) when "
                                  "the input is RGB, lenet (the MNIST <-> USPS LeNet) when grey; or any nets backbone")
    steps: int = param(3000, ge=1, help="SGD steps (the papers and TLlib train 10k-50k steps on GPUs; 3000 fit the "
                                        "CPU budget of the domain_adaptation suite)")
    batch_size: int = param(64, ge=1, help="images per domain per step (DANN: 128 split between the domains)")
    lr: float = param(0.01, gt=0, help="SGD rate mu_0 (DANN's 0.01; at 0.03 source_only reached a higher source "
                                       "validation accuracy on MNIST -> USPS, but DANN on MNIST -> MNIST-M diverged)")
    momentum: float = param(0.9, ge=0, lt=1, help="SGD momentum (DANN's 0.9)")
    weight_decay: float = param(5e-4, ge=0, help="SGD weight decay (CDAN's and MCD's digit code; DANN states none)")
    lr_schedule: str = param("annealed", choices=("annealed", "constant"),
                             help="annealed: DANN's mu_0 / (1 + 10 p)^0.75 with p = step / steps; constant")
    normalize: bool = param(True, help="inputs mapped to (x - 0.5) / 0.5, TLlib's digit normalisation (the DANN "
                                       "paper subtracts the mean); false: x in [0, 1]")
    source_samples: int = param(0, ge=0, help="source training images used (0: all; the ADDA/CoGAN protocol "
                                              "uses 2000 MNIST / 1800 USPS)")
    target_samples: int = param(0, ge=0, help="target training images used (0: all)")
    val_fraction: float = param(0.1, gt=0, lt=1, help="part of each domain's train held out (source: labelled "
                                                      "validation; target: unlabelled validation)")
    val_every: int = param(500, ge=1, help="steps between checks (every validator, and the target test column)")
    val_samples: int = param(2000, ge=10, help="held-out images per domain measured at each check")
    selection: str = param("source_val", choices=VALIDATORS,
                           help="the rule whose checkpoint the run keeps as its network (the report gives every rule)")
    tsne_samples: int = param(500, ge=0, help="test images per domain in the final t-SNE picture (0: none)")
    eval_batch_size: int = param(1000, ge=1)
    log_every: int = param(100, ge=1)
    image_every: int = param(0, ge=0)

    def check(self):
        require(self.dataset in ("", self.target), "dataset", self.dataset,
                f"domain adaptation evaluates on target={self.target!r}; set target, not dataset")
        object.__setattr__(self, "dataset", self.target)
        require(self.net == "auto" or self.net in nets.list_nets("backbone"), "net", self.net,
                f"not auto or one of {nets.list_nets('backbone')}")


def domain_shape(cfg: DAConfig, *datasets: ImageDataset) -> tuple[int, int, int]:
    """The common (C, H, W) input of the domains."""
    c = cfg.channels or (3 if any(d.shape[0] == 3 for d in datasets) else 1)
    return c, cfg.img_size, cfg.img_size


def converted(ds: ImageDataset, shape: tuple[int, int, int]) -> ImageDataset:
    """``ds`` with its images brought to ``shape`` (uint8), labels kept."""
    return ImageDataset(ds.name, ds.split, {"image": convert_uint8(ds.images, shape), "label": ds.labels},
                        list(ds.classes))


def _first(ds: ImageDataset, n: int, seed: int) -> ImageDataset:
    """A seeded subset of ``n`` images (all when n = 0 or n >= len)."""
    if not n or n >= len(ds):
        return ds
    return ds.subset(torch.randperm(len(ds), generator=torch.Generator().manual_seed(40_000 + seed))[:n].sort().values)


class DAMethod(Method):
    """Base of the domain-adaptation methods: subclasses add their networks, optimizers and ``training_step``."""

    Config = DAConfig
    trainable = ("backbone", "head")
    extra_state = ("history", "best_score", "best_step")
    protocols = ("linear", "knn")
    labelled = "source"                            # the domain whose labels train the network (oracle: target)
    uses_target = True                             # whether training draws unlabelled target images

    def __init__(self, cfg: DAConfig):
        super().__init__(cfg)
        src_name = cfg.target if self.labelled == "target" else cfg.source
        src = load_dataset(src_name, "train", cfg.data_dir)
        tgt = load_dataset(cfg.target, "train", cfg.data_dir)
        tgt_test = load_dataset(cfg.target, "test", cfg.data_dir)
        if src.num_classes != tgt.num_classes:
            raise ValueError(f"source {src_name} has {src.num_classes} classes, target {cfg.target} "
                             f"{tgt.num_classes}")
        self.shape = domain_shape(cfg, src, tgt)
        src, tgt, self.target_test = (converted(d, self.shape) for d in (src, tgt, tgt_test))
        s_train, s_val = src.train_val(cfg.val_fraction, cfg.seed)
        t_train, t_val = tgt.train_val(cfg.val_fraction, cfg.seed)
        self.source_train, self.target_train = _first(s_train, cfg.source_samples, cfg.seed), \
            _first(t_train, cfg.target_samples, cfg.seed + 1)
        self.source_val = s_val.subset(range(min(cfg.val_samples, len(s_val))))
        self.target_val = t_val.subset(range(min(cfg.val_samples, len(t_val))))
        self.num_classes = src.num_classes
        c, h, _ = self.shape
        net = cfg.net if cfg.net != "auto" else ("dann_digits" if c == 3 else "lenet")
        self.backbone = nets.create(net, in_chans=c, img_size=h, num_classes=0)
        self.head = classifier_head(self.backbone, self.num_classes)
        self.best = frozen_copy(nn.ModuleDict({"backbone": self.backbone, "head": self.head}))
        self.history = torch.zeros(0, len(COLUMNS), dtype=torch.float64)
        self.best_score, self.best_step = torch.tensor(float("-inf"), dtype=torch.float64), torch.tensor(-1)

    # -- training ----------------------------------------------------------------------------------
    def sgd(self, *modules: nn.Module, lr_scale: float = 1.0, momentum: float | None = None) -> torch.optim.SGD:
        c = self.cfg
        return torch.optim.SGD([p for m in modules for p in m.parameters()], lr=c.lr * lr_scale,
                               momentum=c.momentum if momentum is None else momentum, weight_decay=c.weight_decay)

    def configure_optimizers(self):
        return {"model": self.sgd(self.backbone, self.head)}

    def configure_schedulers(self):
        if self.cfg.lr_schedule == "constant":
            return {}
        steps = self.cfg.steps
        return {k: torch.optim.lr_scheduler.LambdaLR(o, lambda t: annealed_lr_factor(min(t / steps, 1.0)))
                for k, o in self.optimizers.items()}

    def progress(self, step: int) -> float:
        """Training progress p in [0, 1] (DANN's schedules)."""
        return min(step / self.cfg.steps, 1.0)

    def batches(self, rank, world):
        c = self.cfg
        s = {"source": ShuffledBatches({"x": self.source_train.images, "y": self.source_train.labels},
                                       c.batch_size, stream_seed(c.seed, "source"), rank, world)}
        if self.uses_target:
            s["target"] = ShuffledBatches({"x": self.target_train.images}, c.batch_size,
                                          stream_seed(c.seed, "target"), rank, world)
        return Streams(s)

    def prepare_images(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 images -> the networks' input (training, checks, t-SNE and the generic protocols alike)."""
        x = super().prepare_images(x)
        return x.sub(0.5).div_(0.5) if self.cfg.normalize else x

    def inputs(self, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(source images, source labels, target images or None) on the device, as ``prepare_images``."""
        xs, ys = self.prepare_images(batch["source"]["x"]), batch["source"]["y"].to(self.device)
        xt = self.prepare_images(batch["target"]["x"]) if "target" in batch else None
        return xs, ys, xt

    def classification(self, logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        loss = F.cross_entropy(logits, y)
        return loss, {"cls_loss": loss.item(), "train_acc": (logits.argmax(1) == y).float().mean().item()}

    def training_step(self, batch, step):
        out = self.adapt_step(batch, step)
        done = step + 1
        if done == self.cfg.steps and done % self.cfg.val_every:      # the last step is always a candidate
            out.update(self.validate(done))
        return out

    def adapt_step(self, batch, step) -> dict[str, float]:
        raise NotImplementedError

    # -- prediction and selection -----------------------------------------------------------------
    def networks(self, chosen: bool = False) -> dict[str, nn.Module]:
        """The plain networks prediction uses (``chosen``: the selected checkpoint's copies)."""
        if chosen and int(self.best_step) >= 0:
            return dict(unwrap(self.best).items())
        return {k: unwrap(getattr(self, k)) for k in unwrap(self.best).keys()}

    def logits(self, nets_: dict[str, nn.Module], x: torch.Tensor) -> torch.Tensor:
        """Class logits of float images (B, C, H, W) (MCD overrides: its two classifiers' average)."""
        return nets_["head"](nets_["backbone"](x))

    @torch.no_grad()
    def probabilities(self, images: torch.Tensor, chosen: bool = False) -> torch.Tensor:
        """uint8 images -> softmax (N, classes) on the CPU, networks in evaluation mode (restored after)."""
        nn_ = self.networks(chosen)
        dtype = next(nn_["backbone"].parameters()).dtype
        with eval_mode(*nn_.values()):
            out = [self.logits(nn_, self.prepare_images(images[i:i + self.cfg.eval_batch_size]).to(dtype)).float()
                   .softmax(1).cpu() for i in range(0, len(images), self.cfg.eval_batch_size)]
        return torch.cat(out)

    def accuracy(self, ds: ImageDataset, chosen: bool = False) -> float:
        return 100.0 * (self.probabilities(ds.images, chosen).argmax(1) == ds.labels).float().mean().item()

    def validate(self, done: int | None = None) -> dict[str, float]:
        """One check: every validator (none reads a target label) and the target test column."""
        done = self.step if done is None else done
        p = self.probabilities(self.target_val.images)                         # (N, classes), labels unread
        row = {"step": float(done), "source_val": self.accuracy(self.source_val), "entropy": entropy_score(p),
               "im": im_score(p), "snd": snd_score(p), "target_test": self.accuracy(self.target_test)}
        r = torch.tensor([[row[k] for k in COLUMNS]], dtype=torch.float64, device=self.history.device)
        self.history = torch.cat([self.history, r.to(self.history.dtype)])
        score = row[self.cfg.selection]
        if score > float(self.best_score):                                     # the earliest among ties
            self.best_score = torch.tensor(score, dtype=self.best_score.dtype, device=self.best_score.device)
            self.best_step = torch.tensor(done, device=self.best_step.device)
            for k, m in self.networks().items():
                unwrap(self.best)[k].load_state_dict(m.state_dict())
        return {f"val_{k}": v for k, v in row.items() if k != "step"}

    def monitors(self):
        return {"validation": (self.cfg.val_every, self.validate)}

    def selected(self) -> dict[str, dict[str, float]]:
        """For every rule (and ``last``, ``oracle``): the chosen check's step, its score and its target test."""
        h, col = self.history, {k: i for i, k in enumerate(COLUMNS)}
        out = {}
        for rule in (*VALIDATORS, "last", "oracle"):
            i = len(h) - 1 if rule == "last" else selected_row(h, col["target_test" if rule == "oracle" else rule])
            if i >= 0:
                out[rule] = {"step": int(h[i, 0]), "target_test": float(h[i, col["target_test"]]),
                             "source_val": float(h[i, col["source_val"]])}
        return out

    def encoder(self):
        return self.networks(chosen=True)["backbone"]

    def evaluate(self, protocol=None) -> EvalResult:
        c, sel = self.cfg, self.selected()
        metrics = {f"target_test@{rule}": v["target_test"] for rule, v in sel.items()}
        metrics.update({f"step@{rule}": float(v["step"]) for rule, v in sel.items()})
        if c.selection in sel:
            metrics["test_accuracy"] = sel[c.selection]["target_test"]
        labelled = c.target if self.labelled == "target" else c.source
        return EvalResult(metrics, {
            "method": self.name, "source": labelled, "target": c.target, "input": list(self.shape),
            "n_source_train": len(self.source_train), "n_target_train": len(self.target_train) if self.uses_target else 0,
            "n_target_test": len(self.target_test), "steps": self.step,
            "splits": f"{c.val_fraction:g} of each domain's train held out (seed {c.seed}); first {len(self.source_val)} "
                      f"labelled {labelled} and {len(self.target_val)} unlabelled {c.target} images per check",
            "selection": f"{c.selection} (every {c.val_every} steps); target_test@<rule> for every rule; "
                         "target_test@oracle = best target test accuracy over the checks (reads target labels: "
                         "the gap, never a reported choice)"},
            summary=f"{self.name} {labelled} -> {c.target}: target test "
                    + ", ".join(f"{metrics[f'target_test@{r}']:.1f}% ({r})" for r in ("source_val", "im", "oracle")
                                if f"target_test@{r}" in metrics))

    # -- pictures -------------------------------------------------------------------------------------
    def images(self):
        return {"domains": torch.cat([self.source_train.images[:8], self.target_train.images[:8]]).float() / 255}

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        from ..eval.representation import extract
        return extract(self.encoder(), images, self.prepare_images, self.cfg.eval_batch_size)

    def on_train_end(self, run_dir):
        n = self.cfg.tsne_samples
        if not n:
            return {}
        from ..data import load_dataset as _load
        from ..viz.embedding import tsne
        from ..viz.domain import domain_embedding_figure
        from ..viz.grid import save_image
        labelled = self.cfg.target if self.labelled == "target" else self.cfg.source
        src_test = converted(_load(labelled, "test", self.cfg.data_dir), self.shape)
        xs, xt = src_test.images[:n], self.target_test.images[:n]
        xy = tsne(torch.cat([self.features(xs), self.features(xt)]), seed=self.cfg.seed)
        img = domain_embedding_figure(xy, torch.cat([src_test.labels[:n], self.target_test.labels[:n]]),
                                      torch.cat([torch.zeros(len(xs)), torch.ones(len(xt))]).long(),
                                      (labelled, self.cfg.target), f"{self.name}: {labelled} -> {self.cfg.target}")
        path = save_image(img, run_dir / "tsne.png")
        return {"tsne": str(path)}
