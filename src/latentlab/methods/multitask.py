"""Multi-task learning with hard parameter sharing and five ways to weigh the tasks.

One network (``nets.multitask``: a shared trunk split at ``split``, a tail and head per task) is trained on
the tasks of a multi-target dataset (``data.multitask.TASKS``). Per step, with L_i the batch loss of task i:

    uniform      sum_i w_i L_i / T, w_i = task_weights (1 each)        the "uniform scaling" baseline
    uncertainty  sum_i L_i / (2 exp(s_i)) + s_i / 2, s_i learned       Kendall et al. 2018, eq. 7
    gradnorm     sum_i w_i L_i; w learned so ||grad_W w_i L_i|| tracks mean_j ||.|| * r_i^alpha (W: the last
                 shared layer; w renormalised to sum T)                Chen et al. 2018, Alg. 1
    mgda_ub      sum_i a_i L_i, a = argmin_{a in simplex} ||sum_i a_i grad_z L_i~|| with z the shared
                 representation and L_i~ normalised (``mgda_normalization``)       Sener & Koltun 2018, Alg. 2
    pcgrad       shared weights step along sum_i g_i', g_i' = g_i minus its projections on the g_j it conflicts
                 with; task weights along their own gradients        Yu et al. 2020, Alg. 1

Model selection sees only validation data: every ``val_every`` steps the network is measured on a split
held out from train and the best one (``select``) is kept in ``best``; ``evaluate`` reports it on test.
``freeze_shared`` with ``init_from=RUN:net:shared.`` reads tasks out of another run's frozen trunk (the
Taskonomy transfer protocol); ``train_samples`` trains on a labelled subset.
Defaults: Sener & Koltun's LeNet and batch 256 (their appendix C.1), Adam 5e-4 of their code's sample config
(the paper: SGD with momentum, the rate searched per method, 100 epochs), a CPU length of steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .. import nets
from ..config import TrainConfig, param, require
from ..data import load_dataset
from ..data.multitask import TASKS
from ..engine.batches import ShuffledBatches
from ..engine.method import Method, register_method
from ..errors import ConfigError
from ..eval.multitask import evaluate_tasks
from ..losses.multitask import (gradient_normalizers, gradnorm_loss, gradnorm_renormalise, min_norm_weights,
                                pcgrad, task_loss, uncertainty_weighted)
from ..modules import unwrap
from ..nets.ema import frozen_copy
from ..nets.multitask import SPLITS
from ..results import EvalResult
from ._selection import initial_state, keep_if_better, last_step_check, validation_monitor

WEIGHTINGS = ("uniform", "uncertainty", "gradnorm", "mgda_ub", "pcgrad")
GRADIENT_WEIGHTINGS = ("gradnorm", "mgda_ub", "pcgrad")


@dataclass
class MultiTaskConfig(TrainConfig):
    dataset: str = param("multi_mnist", choices=tuple(TASKS), help="a multi-target dataset")
    tasks: list[str] = param([], help="the dataset's tasks to learn (empty: all of them)")
    steps: int = param(3000, ge=1, help="CPU default (Sener & Koltun train 100 epochs of 60k: 23k steps)")
    batch_size: int = param(256, ge=1)
    lr: float = param(5e-4, gt=0, help="Adam learning rate (their code's sample config; the paper searched "
                                       "{1e-4 .. 5e-2} with SGD + momentum per method)")
    weight_decay: float = param(0.0, ge=0)
    split: str = param("fc", choices=SPLITS, help="where the tasks part: none (separate networks), after conv1, "
                                                  "after conv2, after the FC layer (all shared)")
    width: int = param(10, ge=1, help="channels of conv1 (conv2 has twice as many)")
    num_features: int = param(50, ge=1, help="FC feature width")
    dropout: float = param(0.5, ge=0, lt=1)
    weighting: str = param("uniform", choices=WEIGHTINGS)
    task_weights: list[float] = param([], help="uniform: a weight per task (empty: 1 each)")
    gradnorm_alpha: float = param(1.5, ge=0, help="GradNorm's asymmetry alpha (Chen et al.: 1.5 on NYUv2)")
    gradnorm_lr: float = param(0.025, gt=0, help="Adam learning rate of GradNorm's task weights (a choice made here, "
                                                  "not a value taken from the paper)")
    mgda_normalization: str = param("loss+", choices=("none", "l2", "loss", "loss+"),
                                    help="gradient normalisation before the min-norm solve (Sener & Koltun's "
                                         "normalization_type; loss+ in their sample config)")
    freeze_shared: bool = param(False, help="keep the shared trunk fixed (a readout of init_from's trunk)")
    train_samples: int = param(0, ge=0, help="train on this many training images (0: all)")
    val_fraction: float = param(0.1, gt=0, lt=1, help="part of train held out for model selection")
    val_samples: int = param(2000, ge=1, help="validation images measured at each check")
    val_every: int = param(250, ge=0, help="steps between validation checks (0: only the last step)")
    select: str = param("loss", help="model selection on validation: 'loss' (the sum of the task losses) or "
                                     "a task's name (its metric)")
    eval_batch_size: int = param(1000, ge=1)
    log_every: int = param(100, ge=1)
    image_every: int = param(0, ge=0)
    channels_last: bool = param(False, help="the LeNet is too small to gain from channels_last")

    def task_names(self) -> list[str]:
        return list(self.tasks) or list(TASKS[self.dataset])

    def check(self):
        known = TASKS[self.dataset]
        for t in self.tasks:
            require(t in known, "tasks", list(self.tasks), f"'{t}' is not a task of {self.dataset} "
                                                            f"(known: {', '.join(known)})")
        require(len(set(self.tasks)) == len(self.tasks), "tasks", list(self.tasks), "a task is named twice")
        names = self.task_names()
        require(not self.task_weights or len(self.task_weights) == len(names), "task_weights",
                list(self.task_weights), f"needs one weight per task ({len(names)})")
        require(all(w >= 0 for w in self.task_weights), "task_weights", list(self.task_weights), "must be >= 0")
        require(self.weighting == "uniform" or not self.task_weights, "task_weights", list(self.task_weights),
                "only the uniform weighting takes fixed weights")
        if self.weighting in GRADIENT_WEIGHTINGS:
            require(self.split != "none", "weighting", self.weighting,
                    "needs a shared trunk (split=none shares nothing)")
            require(len(names) > 1, "weighting", self.weighting, "needs two or more tasks")
            require(self.devices == 1, "devices", self.devices,
                    f"weighting={self.weighting} computes per-task gradients on one process")
        require(not self.freeze_shared or self.split != "none", "freeze_shared", True, "split=none shares nothing")
        require(not self.freeze_shared or self.weighting not in GRADIENT_WEIGHTINGS, "freeze_shared", True,
                f"weighting={self.weighting} balances the gradients of a trained shared trunk")
        require(self.select in ("loss", *names), "select", self.select, f"not 'loss' nor one of {names}")


@register_method
class MultiTask(Method):
    name = "multitask"
    summary = "Multi-task learning: shared trunk, task heads, uniform/uncertainty/GradNorm/MGDA-UB/PCGrad"
    paper = "Sener & Koltun 2018; Kendall et al. 2018; Chen et al. 2018; Yu et al. 2020"
    Config = MultiTaskConfig
    trainable = ("net", "task_params")
    extra_state = ("initial_losses", "best_score", "best_step")
    protocols = ("linear", "knn")

    def __init__(self, cfg: MultiTaskConfig):
        super().__init__(cfg)
        self.task_list = cfg.task_names()
        self.specs = {t: TASKS[cfg.dataset][t] for t in self.task_list}
        full = load_dataset(cfg.dataset, "train", cfg.data_dir)
        self.test_set = load_dataset(cfg.dataset, "test", cfg.data_dir)
        self.train_set, val = full.train_val(cfg.val_fraction, cfg.seed)
        self.val_set = val.subset(range(min(cfg.val_samples, len(val))))
        if cfg.train_samples:
            if cfg.train_samples > len(self.train_set):
                raise ConfigError(f"config key 'train_samples' = {cfg.train_samples} is invalid: the training "
                                  f"part has {len(self.train_set)} images")
            g = torch.Generator().manual_seed(20_000 + cfg.seed)
            self.train_set = self.train_set.subset(torch.randperm(len(self.train_set), generator=g)[:cfg.train_samples])
        c, h, _ = full.shape
        self.net = nets.create("multitask_lenet", tasks={t: s.outputs for t, s in self.specs.items()},
                               in_chans=c, img_size=h, split=cfg.split, width=cfg.width,
                               num_features=cfg.num_features, dropout=cfg.dropout)
        T = len(self.task_list)
        self.task_params = nets.create("task_weights", n=T, init=1.0 if cfg.weighting == "gradnorm" else 0.0)
        self.best = frozen_copy(self.net)
        self.initial_losses = torch.zeros(T)                  # GradNorm's L_i(0)
        self.best_score, self.best_step = initial_state()      # lower is better ("more is better" metrics negated)

    # -- optimisation ---------------------------------------------------------------------------------
    def configure_optimizers(self):
        c = self.cfg
        net = unwrap(self.net)
        if c.freeze_shared:
            net.shared.requires_grad_(False)
        params = [p for p in net.parameters() if p.requires_grad]
        opts = {"net": torch.optim.Adam(params + (list(self.task_params.parameters())
                                                  if c.weighting == "uncertainty" else []),
                                        lr=c.lr, weight_decay=c.weight_decay)}
        if c.weighting == "gradnorm":
            opts["weights"] = torch.optim.Adam(self.task_params.parameters(), lr=c.gradnorm_lr)
        return opts

    def batches(self, rank, world):
        fields = {"image": self.train_set.images, **{s.field: self.train_set.fields[s.field] for s in self.specs.values()},
                  **{s.mask: self.train_set.fields[s.mask] for s in self.specs.values() if s.mask}}
        return ShuffledBatches(fields, min(self.cfg.batch_size, len(self.train_set)), self.cfg.seed, rank, world)

    def task_losses(self, out: dict, batch: dict) -> torch.Tensor:
        """(T,) batch-mean loss of every task."""
        dev = self.device
        return torch.stack([task_loss(s.kind, out[t], batch[s.field].to(dev), s.scale,
                                      batch[s.mask].to(dev) if s.mask else None).mean()
                            for t, s in self.specs.items()])

    def training_step(self, batch, step):
        c, x = self.cfg, self.prepare_images(batch["image"])
        if c.freeze_shared:
            unwrap(self.net).shared.eval()                                # frozen: no dropout, fixed statistics
        if c.weighting in GRADIENT_WEIGHTINGS:
            net = unwrap(self.net)
            z = self.differentiable(self.net, "forward_shared")(x)        # (B, ...) shared representation
            losses = self.task_losses(self.differentiable(self.net, "forward_tasks")(z), batch)   # (T,)
            info = getattr(self, f"_step_{c.weighting}")(net, z, losses)
        else:
            losses = self.task_losses(self.net(x), batch)                  # (T,)
            if c.weighting == "uncertainty":
                total = uncertainty_weighted(losses, self.task_params.weight)
            else:
                w = torch.tensor(c.task_weights or [1.0] * len(losses), device=losses.device, dtype=losses.dtype)
                total = (w * losses).sum() / len(losses)
            self.optimize("net", total)
            info = {}
        out = {"loss": losses.sum().item(), **{f"loss_{t}": v.item() for t, v in zip(self.task_list, losses)}}
        out.update(last_step_check(self, step))
        if c.weighting in ("uncertainty", "gradnorm"):
            out.update({f"w_{t}": v.item() for t, v in zip(self.task_list, self.task_params.weight.detach())})
        return {**out, **info}

    def _step_mgda_ub(self, net, z, losses):
        grads = torch.stack([torch.autograd.grad(l, z, retain_graph=True)[0].flatten() for l in losses])  # (T, B*F)
        gn = gradient_normalizers(grads, losses.detach(), self.cfg.mgda_normalization)
        alpha = min_norm_weights(grads / gn[:, None]).detach()             # (T,) on the simplex
        self.optimize("net", (alpha * losses).sum())
        return {f"a_{t}": a.item() for t, a in zip(self.task_list, alpha)}

    def _step_pcgrad(self, net, z, losses):
        shared = [p for p in net.shared_parameters() if p.requires_grad]
        if not shared:
            raise ConfigError("weighting=pcgrad: the shared trunk has no trainable weights (freeze_shared?)")
        per_task = [torch.autograd.grad(l, shared, retain_graph=True) for l in losses]
        flat = torch.stack([torch.cat([g.flatten() for g in gs]) for gs in per_task])      # (T, P)
        order = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + self.step)   # per step: exact resume
        surgery = pcgrad(flat / len(losses), order)                       # the gradient of the mean, projected

        def project():                                                    # shared weights: the surgery's sum
            i = 0
            for p in shared:
                p.grad = surgery[i:i + p.numel()].view_as(p).to(p.dtype)
                i += p.numel()
        self.optimize("net", losses.mean(), edit_grads=project)          # task weights: their own gradients
        cos = torch.nn.functional.cosine_similarity(flat[0], flat[1], dim=0).item()
        return {"grad_cos_01": cos}

    def _step_gradnorm(self, net, z, losses):
        if step0 := bool((self.initial_losses == 0).all()):
            self.initial_losses = losses.detach().clone()
        W = net.last_shared_layer().weight
        norms = torch.stack([torch.autograd.grad(l, W, retain_graph=True)[0].norm() for l in losses]).detach()
        w = self.task_params.weight
        lgrad = gradnorm_loss(w * norms, losses.detach() / self.initial_losses, self.cfg.gradnorm_alpha)
        gw, = torch.autograd.grad(lgrad, w)
        self.optimize("net", (w.detach() * losses).sum())
        opt = self.optimizers["weights"]
        opt.zero_grad(set_to_none=True)
        w.grad = gw
        opt.step()
        gradnorm_renormalise(w.data)
        return {"gradnorm_loss": lgrad.item(), **({"gradnorm_start": 1.0} if step0 else {})}

    # -- validation-only model selection -----------------------------------------------------------------
    def measure(self, net, ds, per_sample: bool = False) -> dict:
        was = net.training
        net.eval()
        try:
            dtype = next(net.parameters()).dtype                           # the plain module: float64 under 64-true
            return evaluate_tasks(net, ds.fields, self.specs, lambda x: self.prepare_images(x).to(dtype),
                                  self.cfg.eval_batch_size, per_sample)
        finally:
            net.train(was)

    def score(self, res: dict) -> float:
        """Lower is better: the sum of the validation task losses, or minus / plus the chosen task's metric."""
        s = self.cfg.select
        if s == "loss":
            return sum(res[t + "_loss"] for t in self.task_list)
        return -res[s] if self.specs[s].higher_is_better else res[s]

    def validate(self, done: int | None = None) -> dict[str, float]:
        res = self.measure(unwrap(self.net), self.val_set)
        score = self.score(res)
        keep_if_better(self, self.net, score, self.step if done is None else done)
        return {f"val_{k}": v for k, v in res.items()} | {"val_score": score}

    def monitors(self):
        return validation_monitor(self)

    def encoder(self):
        return self.best if int(self.best_step) >= 0 else self.net

    def evaluate(self, protocol=None) -> EvalResult:
        chosen = unwrap(self.encoder())
        test, val = self.measure(chosen, self.test_set), self.measure(chosen, self.val_set)
        metrics = {**{f"test_{k}": v for k, v in test.items()}, **{f"val_{k}": v for k, v in val.items()}}
        return EvalResult(metrics, {
            "dataset": self.cfg.dataset, "tasks": self.task_list, "split": self.cfg.split,
            "weighting": self.cfg.weighting, "metrics": {t: s.metric for t, s in self.specs.items()},
            "n_train": len(self.train_set), "n_test": len(self.test_set),
            "val_split": f"{self.cfg.val_fraction:g} of train (seed {self.cfg.seed}), first {len(self.val_set)}",
            "selection": f"best validation {self.cfg.select} every {self.cfg.val_every} steps "
                         f"(chosen step {int(self.best_step)}); test never read for a choice",
            "step": self.step})
