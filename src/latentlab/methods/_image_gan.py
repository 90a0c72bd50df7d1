"""Plumbing shared by the image GANs (dcgan, wgan, wgan_gp, cgan, acgan); no algorithm lives here.

Data (train part / held-out validation part of the train split), the latent prior, fixed evaluation
noise, the optional EMA of G, sampling, pictures (grids, progression strip, lerp/slerp interpolation,
class grid) and evaluation (FID/KID, precision/recall, density/coverage, class statistics, Stacked-MNIST
modes) with best-checkpoint tracking by validation FID. The algorithms are in the method files.

Every tensor here that must survive a resume (fixed noise and labels, the progression strip, the best
FID) is in ``extra_state``; G, D and G_ema are modules, so they and both optimizers are checkpointed.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from .. import nets
from ..config import TrainConfig, param, require
from ..data import load_dataset
from ..engine.batches import ShuffledBatches
from ..eval import gan_metrics as gm
from ..viz.grid import labelled_rows, make_grid, save_image
from .base import EvalResult, Method, linear_decay, unwrap

VAL_SPLIT_SEED = 0  # the same held-out part as the feature network's (supervised, seed 0)
CONFIDENT = gm.CONFIDENT


@dataclass
class ImageGANConfig(TrainConfig):
    dataset: str = param("mnist", help="image dataset (28, 32 or 64 px; 1 or 3 channels), e.g. mnist, stacked_mnist")
    z_dim: int = param(100, ge=1, help="latent dimension")
    prior: str = param("uniform", choices=("uniform", "normal"),
                       help="z ~ U[-1, 1] (DCGAN, course slide) or N(0, I) (the WGAN and WGAN-GP authors' code)")
    ngf: int = param(32, ge=1, help="generator width, channels of its last hidden layer (DCGAN Fig. 1 at 64 px: "
                                    "128; 32 here: at 28 px on 2 CPU cores, 32/32 gave the best validation FID "
                                    "after equal time, ~3.5x the steps of 64/64)")
    ndf: int = param(32, ge=1, help="discriminator width, channels of its first layer (DCGAN: 128 at 64 px; 32 "
                                    "here, see ngf)")
    ema_decay: float = param(0.0, ge=0, lt=1, help="EMA decay of G's weights for sampling/eval (0: off)")
    lr_decay: str = param("none", choices=("none", "linear"),
                          help="learning rates of G and D: constant (the papers) or linear to 0 over `steps`")
    val_fraction: float = param(0.1, gt=0, lt=1, help="part of train held out as the FID validation reference")
    max_train: int | None = param(None, ge=1, help="use only the first N training images (quick runs)")
    eval_samples: int = param(5000, ge=2, help="generated and reference samples for the final metrics")
    fid_every: int = param(0, ge=0, help="steps between validation FIDs for best-checkpoint tracking (0: off)")
    fid_track_samples: int = param(2048, ge=2, help="samples per tracking FID")
    featurenet_steps: int = param(1500, ge=1, help="steps to train the feature network if none is cached")
    mode_samples: int = param(26000, ge=1, help="samples for Stacked-MNIST mode counting (PacGAN: 26k)")
    num_fixed: int = param(64, ge=8, help="fixed evaluation noise vectors (sample grids)")
    log_every: int = param(50, ge=1)
    image_every: int = param(500, ge=0)

    def check(self):
        require(self.eval_samples >= 2, "eval_samples", self.eval_samples, "need at least 2")


class ImageGAN(Method):
    generative = True
    own_protocols = ("val", "train", "test")         # the FID reference split
    trainable = ("G", "D")
    extra_state = ("fixed_z", "fixed_y", "progress", "progress_steps", "best_fid")
    conditional: ClassVar[bool] = False

    def __init__(self, cfg: ImageGANConfig):
        super().__init__(cfg)
        full = load_dataset(cfg.dataset, "train", cfg.data_dir)
        self.train_set, self.val_set = full.train_val(cfg.val_fraction, VAL_SPLIT_SEED)
        if cfg.max_train:
            self.train_set = self.train_set.subset(range(min(cfg.max_train, len(self.train_set))))
        self.C, self.H, _ = full.shape
        self.K = full.num_classes
        g = torch.Generator().manual_seed(cfg.seed)
        self.fixed_z = self.prior(cfg.num_fixed, g)                          # (F, z)
        self.fixed_y = torch.arange(cfg.num_fixed) % self.K                  # (F,)
        self.progress = torch.zeros(0, 8, self.C, self.H, self.H)           # (rows, 8, C, H, W)
        self.progress_steps = torch.zeros(0, dtype=torch.long)
        self.best_fid = torch.tensor(float("inf"), dtype=torch.float64)
        self._cache: dict = {}      # the frozen feature net: not an attribute module, so never checkpointed
        self.stream = None

    # -- networks --------------------------------------------------------------------------------
    def make_generator(self):
        c = self.cfg
        return nets.create("dcgan_generator", z_dim=c.z_dim, img_size=self.H, channels=self.C, ngf=c.ngf,
                           num_classes=self.K if self.conditional else 0)

    def make_discriminator(self, **kw):
        return nets.create("dcgan_discriminator", img_size=self.H, channels=self.C, ndf=self.cfg.ndf, **kw)

    def make_ema(self):
        """A frozen copy of G updated by ``ema_update`` (None when ema_decay = 0)."""
        return copy.deepcopy(self.G).requires_grad_(False) if self.cfg.ema_decay > 0 else None

    @torch.no_grad()
    def ema_update(self) -> None:
        if getattr(self, "G_ema", None) is None:
            return
        d = self.cfg.ema_decay
        g = unwrap(self.G)
        for pe, p in zip(self.G_ema.parameters(), g.parameters()):
            pe.lerp_(p, 1 - d)                                              # pe = d pe + (1 - d) p
        for be, b in zip(self.G_ema.buffers(), g.buffers()):
            be.copy_(b)                                                     # BatchNorm statistics

    def configure_schedulers(self):
        return linear_decay(self.optimizers, self.cfg.steps) if self.cfg.lr_decay == "linear" else {}

    def end_step(self, step: int) -> dict[str, float]:
        """After a training step's updates: the learning-rate schedules advance, then validation-FID tracking."""
        for s in self.schedulers.values():
            s.step()
        return self.track_best(step)

    # -- data and noise ----------------------------------------------------------------------------
    def prior(self, n: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        if self.cfg.prior == "uniform":
            return torch.rand(n, self.cfg.z_dim, generator=generator, device=device) * 2 - 1
        return torch.randn(n, self.cfg.z_dim, generator=generator, device=device)

    def noise(self, n: int) -> torch.Tensor:
        return self.prior(n, device=self.device)

    def random_labels(self, n: int) -> torch.Tensor:
        return torch.randint(self.K, (n,), device=self.device)

    def batches(self, rank, world):
        self.stream = ShuffledBatches({"x": self.train_set.images, "y": self.train_set.labels},
                                      self.cfg.batch_size, self.cfg.seed, rank, world)
        return self.stream

    def real(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 batch -> images in [-1, 1] (G's tanh range) and labels, on the device."""
        return self.prepare_images(batch["x"]) * 2 - 1, batch["y"].to(self.device)

    def real_batches(self, batch, k: int):
        """The step's batch, then k - 1 more from the (checkpointed) stream: k critic iterations."""
        yield self.real(batch)
        for _ in range(k - 1):
            yield self.real(next(self.stream))

    # -- sampling ---------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, z: torch.Tensor, y: torch.Tensor | None = None, chunk: int = 500) -> torch.Tensor:
        """G_ema (or G) in eval mode: z (N, z_dim) -> images (N, C, H, W) in [0, 1] on the CPU."""
        G = self.G_ema if getattr(self, "G_ema", None) is not None else self.G
        was = G.training
        G.eval()
        out = []
        for i in range(0, len(z), chunk):
            zi = z[i:i + chunk].to(self.device)
            yi = y[i:i + chunk].to(self.device) if self.conditional else None
            out.append(G(zi, yi).float().cpu())
        G.train(was)
        return (torch.cat(out) + 1) / 2

    def sample(self, n, label: int | None = None, seed: int | None = None, **kw):
        if label is not None and not self.conditional:
            from ..errors import ConfigError
            raise ConfigError(f"method '{self.name}' is unconditional: --class is not supported")
        if label is not None and not 0 <= label < self.K:
            from ..errors import ConfigError
            raise ConfigError(f"--class {label} is out of range: {self.cfg.dataset} has {self.K} classes")
        if seed is None and n <= len(self.fixed_z):
            z, y = self.fixed_z[:n], self.fixed_y[:n]
        else:
            z = self.prior(n, torch.Generator().manual_seed(seed or 0))
            y = torch.arange(n) % self.K
        if label is not None:
            y = torch.full((n,), label, dtype=torch.long)
        return self.generate(z, y)

    # -- pictures ---------------------------------------------------------------------------------
    def class_grid(self, per_class: int = 10, scale: int = 1) -> torch.Tensor:
        """One row per class (first 20 classes), labelled with the class; columns share their noise."""
        k = min(self.K, 20)
        z = self.fixed_z[:per_class].repeat(k, 1)
        y = torch.arange(k).repeat_interleave(per_class)
        return labelled_rows(self.generate(z, y), per_class, [f"class {c}" for c in range(k)], scale=scale)

    def interpolation(self, mode: str, rows: int = 8, steps: int = 10) -> torch.Tensor:
        """Latent walks between fixed noise pairs: ``lerp`` or ``slerp`` (Shoemake 1985; White 2016)."""
        a, b = self.fixed_z[:rows], self.fixed_z[rows:2 * rows] if len(self.fixed_z) >= 2 * rows else self.fixed_z.flip(0)[:rows]
        t = torch.linspace(0, 1, steps, device=a.device)[None, :, None]    # (1, S, 1)
        a, b = a[:, None], b[:, None]                                       # (R, 1, z)
        if mode == "lerp":
            z = (1 - t) * a + t * b
        else:
            cos = (a * b).sum(-1, keepdim=True) / (a.norm(dim=-1, keepdim=True) * b.norm(dim=-1, keepdim=True))
            omega = cos.clamp(-1 + 1e-7, 1 - 1e-7).acos()
            z = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)
        y = self.fixed_y[:rows].repeat_interleave(steps)
        return make_grid(self.generate(z.reshape(rows * steps, -1), y), nrow=steps)

    def images(self):
        s = self.sample(len(self.fixed_z))
        if not len(self.progress_steps) or int(self.progress_steps[-1]) != self.step:
            self.progress = torch.cat([self.progress.cpu(), s[None, :8]])
            self.progress_steps = torch.cat([self.progress_steps.cpu(), torch.tensor([self.step])])
            if len(self.progress) > 16:                                     # keep a spread of 16 rows
                keep = torch.linspace(0, len(self.progress) - 1, 16).round().long()
                self.progress, self.progress_steps = self.progress[keep], self.progress_steps[keep]
        out = {"samples": s}
        if self.conditional:
            out["class_grid"] = self.class_grid()
        return out

    def on_train_end(self, run_dir):
        run_dir = Path(run_dir)
        out = {"samples_grid": save_image(self.sample(len(self.fixed_z)), run_dir / "samples.png", scale=2)}
        for mode in ("lerp", "slerp"):
            out[f"interp_{mode}"] = save_image(self.interpolation(mode), run_dir / f"interp_{mode}.png", scale=2)
        if len(self.progress):
            strip = labelled_rows(self.progress.reshape(-1, self.C, self.H, self.H), 8,
                                  [f"step {int(s) + 1}" for s in self.progress_steps])  # steps done (self.step: index)
            out["progression"] = save_image(strip, run_dir / "progression.png")
        if self.conditional:
            out["class_grid"] = save_image(self.class_grid(scale=2), run_dir / "class_grid.png")
        return {k: str(v) for k, v in out.items()}

    # -- evaluation -------------------------------------------------------------------------------
    def featurenet(self):
        if "featurenet" not in self._cache:
            from ..eval.featurenet import load_featurenet
            self._cache["featurenet"] = load_featurenet(self.cfg.dataset, self.cfg.data_dir,
                                                        steps=self.cfg.featurenet_steps).to(self.device)
        return self._cache["featurenet"]

    def _features(self, x01: torch.Tensor, fn) -> torch.Tensor:
        return self._read(x01, fn)[0]

    def _read(self, x01: torch.Tensor, fn) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(features (N, F), classes (N,), confidences (N,)) of the frozen classifier, one pass in chunks of 1000."""
        out = [fn.read(x01[i:i + 1000].to(self.device)) for i in range(0, len(x01), 1000)]
        return tuple(torch.cat([o[j].cpu() for o in out]) for j in range(3))

    def fake_set(self, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """n samples from eval noise of ``seed``, quantised to 8 bits like the real images; labels cycle."""
        z = self.prior(n, torch.Generator().manual_seed(seed))
        y = torch.arange(n) % self.K
        return (self.generate(z, y) * 255).round() / 255, y

    def reference(self, split: str, n: int) -> torch.Tensor:
        """The first n images of the reference split: val (held out from train; every choice is made on
        it), train (the training part) or test (the dataset's test split, for the reported figures)."""
        if split == "test":
            if "test_set" not in self._cache:
                self._cache["test_set"] = load_dataset(self.cfg.dataset, "test", self.cfg.data_dir)
            ds = self._cache["test_set"]
        else:
            ds = self.val_set if split == "val" else self.train_set
        return ds.images[:n].float() / 255

    def reference_features(self, split: str, n: int, fn) -> torch.Tensor:
        """The frozen network's features of the first n reference images, computed once per run (the
        reference and the network are fixed, so validation-FID tracking does not recompute them)."""
        key = ("reference_features", split, n, fn.sha256)
        if key not in self._cache:
            self._cache[key] = self._features(self.reference(split, n), fn)
        return self._cache[key]

    def fid_or_kid(self, n: int, split: str = "val", seed: int | None = None) -> tuple[str, float]:
        fn = self.featurenet()
        fake, _ = self.fake_set(n, self.cfg.seed + 1 if seed is None else seed)
        fr, ff = self.reference_features(split, n, fn), self._features(fake, fn)
        if min(len(fr), len(ff)) >= gm.FID_MIN_SAMPLES:
            return "fid", gm.fid(fr, ff)
        return "kid", gm.kid(fr, ff)[0]

    def track_best(self, step: int) -> dict[str, float]:
        """Every ``fid_every`` steps: validation FID; the best G so far goes to best_generator.safetensors."""
        c = self.cfg
        if not c.fid_every or (step + 1) % c.fid_every or self.run_dir is None:
            return {}
        name, value = self.fid_or_kid(c.fid_track_samples)
        if value < float(self.best_fid):
            from ..fileio import save_safetensors, write_json
            self.best_fid = torch.tensor(value, dtype=torch.float64)
            G = self.G_ema if getattr(self, "G_ema", None) is not None else unwrap(self.G)
            save_safetensors(Path(self.run_dir) / "best_generator.safetensors", G.state_dict())
            write_json(Path(self.run_dir) / "best.json",
                       {"step": step + 1, name: value, "reference": "val", "n": c.fid_track_samples,
                        "feature_net_sha256": self.featurenet().sha256})
        return {f"{name}_val": value}

    def evaluate(self, protocol=None) -> EvalResult:
        split = protocol or "val"
        if split not in ("val", "train", "test"):
            from ..errors import ConfigError
            raise ConfigError(f"{self.name}: unknown protocol '{protocol}' (val, train or test: the FID reference)")
        c, fn = self.cfg, self.featurenet()
        seed = c.seed + 1
        fake, y_req = self.fake_set(c.eval_samples, seed)
        fr, (ff, pred, conf) = self.reference_features(split, c.eval_samples, fn), self._read(fake, fn)
        m, metric_proto = gm.sample_metrics(fr, ff, pred, conf, self.K, seed=seed)
        where = {"val": f" ({c.val_fraction:g} of train held out, split seed {VAL_SPLIT_SEED})",
                 "train": " (training part)", "test": " (the test split; never used for a choice)"}[split]
        proto = {"dataset": c.dataset, "method": self.name, "step": self.step, **fn.protocol(),
                 "reference_split": split + where,
                 "n_real": len(fr), "n_fake": len(ff), "noise_seed": seed, "train_seed": c.seed, "prior": c.prior,
                 "generator": "EMA" if c.ema_decay > 0 else "G", "fake_quantised": "8-bit", **metric_proto}
        if self.conditional:
            m["class_consistency"] = float((pred == y_req).double().mean())
        if self.conditional:
            proto["class_consistency"] = "classifier accuracy on samples of the requested (cycled) class"
        if c.dataset == "stacked_mnist":
            fake_m, _ = self.fake_set(c.mode_samples, seed + 1)
            _, pred_m, conf_m = self._read(fake_m, fn)
            sure = conf_m >= CONFIDENT                      # junk that the classifier cannot read is no mode
            hist = gm.class_histogram(pred_m[sure], 1000) if sure.any() else {"classes_covered": 0,
                                                                                "class_kl": float("inf")}
            m["modes"], m["kl_modes"] = hist["classes_covered"], hist["class_kl"]
            m["modes_all_samples"] = gm.class_histogram(pred_m, 1000)["classes_covered"]
            m["mode_confident_fraction"] = float(sure.double().mean())
            proto["modes"] = (f"{c.mode_samples} samples, each channel classified by the MNIST feature net; a "
                              f"sample counts only if each of its 3 digits is read with probability >= {CONFIDENT}; "
                              "modes hit of 1000, KL(hist of those || uniform) (Unrolled GAN/VEEGAN/PacGAN "
                              "protocol); modes_all_samples counts every sample")
        if math.isfinite(float(self.best_fid)):
            m["best_val_score"] = float(self.best_fid)
            proto["best_val_score"] = f"best tracked validation FID/KID ({c.fid_track_samples} samples), best.json"
        return EvalResult(m, proto)
