"""Plumbing shared by the likelihood-based image models (vae, flow, ddpm); no algorithm lives here.

Data (the train part / a held-out validation part of the train split, as the image GANs), the fixed
evaluation noise, sampling from seeded noise, latent walks, pictures and the default evaluation (the image
protocols of ``eval/generative.py``, the likelihood and the interpolation protocols, and MIG on a dataset with
known factors). A method supplies ``noise(n, generator) -> latent`` (a standard normal of its latent's shape),
``decode(latent) -> images in [0, 1]``, ``log_prob`` and ``likelihood_protocol``, and, where it has one,
``encode(x) -> (N, d)`` codes for MIG.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from ..config import TrainConfig, param
from ..data import load_dataset
from ..engine.batches import ShuffledBatches
from ..engine.method import Method
from ..eval import generative as gen
from ..eval import gan_metrics as gm
from ..results import EvalResult
from ..viz.grid import make_grid, save_image


@dataclass
class LikelihoodImageConfig(TrainConfig):
    dataset: str = param("mnist", help="image dataset (e.g. mnist; shapes: the dSprites-style set with factors)")
    val_fraction: float = param(0.1, gt=0, lt=1, help="part of train held out for every choice (validation)")
    max_train: int | None = param(None, ge=1, help="use only the first N training images (quick runs)")
    eval_samples: int = param(5000, ge=2, help="samples and reference images of the final image metrics")
    eval_likelihood: int | None = param(2000, ge=1, help="images of the final likelihood evaluation (None: all)")
    eval_walks: int = param(64, ge=1, help="latent walks (17 points each) of the final interpolation measures")
    num_fixed: int = param(64, ge=8, help="fixed evaluation noise vectors (sample grids)")
    log_every: int = param(100, ge=1)
    image_every: int = param(1000, ge=0)


class LikelihoodImageModel(Method):
    generative = True
    protocols = ("val", "train", "test", "fid", "kid", "prdc", "classes", "likelihood", "interpolation", "mig")
    extra_state = ("fixed_noise",)
    walk: ClassVar[str] = "slerp"               # Gaussian latents: slerp keeps the norm typical along the walk
    nfe_per_sample: ClassVar[int] = 1           # network evaluations to draw one sample (the properties table)

    def __init__(self, cfg: LikelihoodImageConfig):
        super().__init__(cfg)
        full = load_dataset(cfg.dataset, "train", cfg.data_dir)
        self.train_set, self.val_set = full.train_val(cfg.val_fraction, gen.VAL_SPLIT_SEED)
        if cfg.max_train:
            self.train_set = self.train_set.subset(range(min(cfg.max_train, len(self.train_set))))
        self.C, self.H, self.W = full.shape
        self.D = self.C * self.H * self.W
        self.K = full.num_classes
        self.fixed_noise = None                  # made by the subclass once its latent shape is known

    def init_fixed_noise(self) -> None:
        self.fixed_noise = self.noise(self.cfg.num_fixed, torch.Generator().manual_seed(self.cfg.seed))

    def batches(self, rank, world):
        return ShuffledBatches({"x": self.train_set.images}, self.cfg.batch_size, self.cfg.seed, rank, world)

    # -- to implement -----------------------------------------------------------------------------
    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """latent (N, ...) -> images (N, C, H, W) in [0, 1] on the CPU (no grad, eval mode)."""
        raise NotImplementedError

    # -- sampling, walks, pictures ----------------------------------------------------------------
    @torch.no_grad()
    def decode_chunks(self, latent: torch.Tensor, chunk: int = 500) -> torch.Tensor:
        return torch.cat([self.decode(latent[i:i + chunk]) for i in range(0, len(latent), chunk)])

    def sample(self, n, seed: int | None = None, **kw):
        if seed is None and n <= len(self.fixed_noise):
            return self.decode_chunks(self.fixed_noise[:n])
        return self.decode_chunks(self.noise(n, torch.Generator().manual_seed(seed or 0)))

    def interpolate(self, pairs: int, steps: int, seed: int) -> tuple[torch.Tensor, str]:
        """Walks between pairs of prior draws -> ((pairs, steps, C, H, W) images, how)."""
        g = torch.Generator().manual_seed(seed)
        a, b = self.noise(pairs, g), self.noise(pairs, g)
        z = gen.latent_walk(a, b, steps, self.walk)                          # (P, S, ...)
        x = self.decode_chunks(z.flatten(0, 1))
        return x.view(pairs, steps, *x.shape[1:]), f"{self.walk} of {self.latent_name()}"

    def latent_name(self) -> str:
        return "z ~ N(0, I)"

    def images(self):
        return {"samples": self.sample(len(self.fixed_noise))}

    def interpolation_grid(self, rows: int = 8, steps: int = 11) -> torch.Tensor:
        walk, _ = self.interpolate(rows, steps, self.cfg.seed + 3)
        return make_grid(walk.flatten(0, 1), nrow=steps)

    def on_train_end(self, run_dir):
        run_dir = Path(run_dir)
        out = {"samples_grid": save_image(self.sample(len(self.fixed_noise)), run_dir / "samples.png", scale=2),
               "interpolation": save_image(self.interpolation_grid(), run_dir / f"interp_{self.walk}.png", scale=2)}
        return {k: str(v) for k, v in out.items()}

    # -- evaluation -------------------------------------------------------------------------------
    def evaluate(self, protocol=None) -> EvalResult:
        """The image metrics against the reference split ``protocol`` (val, train or test), the likelihood of
        ``eval_likelihood`` images of the same split and the interpolation measures; on a dataset with known
        factors (shapes), the likelihood and MIG instead of the image metrics (it has no feature network)."""
        from ..eval.disentangle import mig
        c, split = self.cfg, protocol or "val"
        lik = gen.likelihood(self, split, c.eval_likelihood)
        if "factors" in self.train_set.fields:
            dis = mig(self, split=split)
            return EvalResult({**lik.metrics, **dis.metrics}, {"likelihood": lik.protocol, "mig": dis.protocol})
        parts = ("fid", "kid", "prdc", "classes") if c.eval_samples >= gm.FID_MIN_SAMPLES else ("kid", "prdc", "classes")
        img, walk = gen.image_report(self, split, c.eval_samples, parts=parts), gen.interpolation(self, pairs=c.eval_walks)
        return EvalResult({**img.metrics, **lik.metrics, **walk.metrics},
                          {**img.protocol, "likelihood": lik.protocol, "interpolation": walk.protocol})
