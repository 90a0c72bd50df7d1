"""Plumbing shared by the image GANs (dcgan, wgan, wgan_gp, cgan, acgan); no algorithm lives here.

Data (train part / held-out validation part of the train split), the latent prior, fixed evaluation
noise, the EMA of G (declared; the engine updates it), sampling, pictures (grids, progression strip,
lerp/slerp interpolation, class grid) and best-checkpoint tracking by validation FID (a monitor the engine
calls). The metrics are the generic protocols of ``eval/generative.py``. The algorithms are in the method files.

Every tensor here that must survive a resume (fixed noise and labels, the progression strip, the best
FID) is in ``extra_state``; G, D and G_ema are modules, so they and both optimizers are checkpointed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from .. import nets
from ..config import TrainConfig, param, require
from ..data import load_dataset
from ..engine.batches import ShuffledBatches
from ..nets.ema import frozen_copy
from ..eval import gan_metrics as gm
from ..eval import generative as gen
from ..viz.grid import labelled_rows, make_grid, save_image
from ..engine.method import Method, linear_decay
from ..modules import unwrap
from ..results import EvalResult

VAL_SPLIT_SEED = gen.VAL_SPLIT_SEED  # held out from training: the generative protocols' "val" reference


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
    mode_samples: int = param(26000, ge=1, help="samples for Stacked-MNIST mode counting (PacGAN: 26k)")
    num_fixed: int = param(64, ge=8, help="fixed evaluation noise vectors (sample grids)")
    log_every: int = param(50, ge=1)
    image_every: int = param(500, ge=0)

    def check(self):
        require(self.eval_samples >= 2, "eval_samples", self.eval_samples, "need at least 2")


class ImageGAN(Method):
    generative = True
    protocols = ("val", "train", "test", "fid", "kid", "prdc", "classes", "modes", "interpolation")  # default: every
                                                     # image protocol against the val / train / test reference
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
        self.stream = None

    # -- networks --------------------------------------------------------------------------------
    def make_generator(self):
        c = self.cfg
        return nets.create("dcgan_generator", z_dim=c.z_dim, img_size=self.H, channels=self.C, ngf=c.ngf,
                           num_classes=self.K if self.conditional else 0)

    def make_discriminator(self, **kw):
        return nets.create("dcgan_discriminator", img_size=self.H, channels=self.C, ndf=self.cfg.ndf, **kw)

    def make_ema(self):
        """A frozen copy of G that the engine averages (``ema``); None when ema_decay = 0."""
        return frozen_copy(self.G) if self.cfg.ema_decay > 0 else None

    def ema(self):
        return {"G_ema": ("G", self.cfg.ema_decay)} if self.cfg.ema_decay > 0 else {}

    def configure_schedulers(self):
        return linear_decay(self.optimizers, self.cfg.steps) if self.cfg.lr_decay == "linear" else {}

    def monitors(self):
        return {"fid": (self.cfg.fid_every, self.track_best)}

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
        z = gen.latent_walk(a, b, steps, mode)                              # (R, S, z)
        y = self.fixed_y[:rows].repeat_interleave(steps)
        return make_grid(self.generate(z.reshape(rows * steps, -1), y), nrow=steps)

    def interpolate(self, pairs: int, steps: int, seed: int) -> tuple[torch.Tensor, str]:
        """Walks between pairs of prior draws (the interpolation protocol): lerp for the uniform prior (DCGAN's
        walks), slerp for the normal one; a conditional G keeps each walk's class (cycled)."""
        g = torch.Generator().manual_seed(seed)
        a, b = self.prior(pairs, g), self.prior(pairs, g)
        mode = "lerp" if self.cfg.prior == "uniform" else "slerp"
        z = gen.latent_walk(a, b, steps, mode).flatten(0, 1)
        y = (torch.arange(pairs) % self.K).repeat_interleave(steps)
        x = self.generate(z, y)
        return x.view(pairs, steps, *x.shape[1:]), f"{mode} of z ~ {self.cfg.prior} prior"

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
                                  [f"step {int(s)}" for s in self.progress_steps])
            out["progression"] = save_image(strip, run_dir / "progression.png")
        if self.conditional:
            out["class_grid"] = save_image(self.class_grid(scale=2), run_dir / "class_grid.png")
        return {k: str(v) for k, v in out.items()}

    # -- evaluation (the generic protocols of eval/generative.py; best-checkpoint tracking is GAN-specific) --
    def track_best(self) -> dict[str, float]:
        """Validation FID (every ``fid_every`` steps); the best G so far goes to best_generator.safetensors."""
        c = self.cfg
        name, value = gen.fid_or_kid(self, c.fid_track_samples)
        if value < float(self.best_fid):
            from ..fileio import save_safetensors, write_json
            self.best_fid = torch.tensor(value, dtype=torch.float64)
            G = self.G_ema if getattr(self, "G_ema", None) is not None else unwrap(self.G)
            save_safetensors(Path(self.run_dir) / "best_generator.safetensors", G.state_dict())
            write_json(Path(self.run_dir) / "best.json",
                       {"step": self.step, name: value, "reference": "val", "n": c.fid_track_samples,
                        "feature_net_sha256": gen.Scorer.of(self).fn.sha256})
        return {f"{name}_val": value}

    def evaluate(self, protocol=None) -> EvalResult:
        """Every image protocol on one sample set against the reference split ``protocol`` (val, train or
        test), Stacked-MNIST's modes, and the best tracked validation score."""
        c = self.cfg
        res = gen.image_report(self, protocol or "val", c.eval_samples,
                               parts=("fid", "kid", "prdc", "classes") if c.eval_samples >= gm.FID_MIN_SAMPLES
                               else ("kid", "prdc", "classes"))
        m, proto = res.metrics, {**res.protocol, "prior": c.prior, "generator": "EMA" if c.ema_decay > 0 else "G"}
        if "fid" not in m:
            proto["fid"] = f"not computed: fewer than {gm.FID_MIN_SAMPLES} samples (use kid)"
        if c.dataset == "stacked_mnist":
            modes = gen.modes(self)
            m.update(modes.metrics)
            proto["modes"] = modes.protocol["modes"]
        if math.isfinite(float(self.best_fid)):
            m["best_val_score"] = float(self.best_fid)
            proto["best_val_score"] = f"best tracked validation FID/KID ({c.fid_track_samples} samples), best.json"
        return EvalResult(m, proto)
