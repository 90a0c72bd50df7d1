"""MLP GAN on 2-D Gaussian mixtures (``ring8``, ``grid25``), with the two generator losses.

Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014: ``minimax`` generator loss
E[log(1 - D(G(z)))] or the ``nonsaturating`` -E[log D(G(z))]. Network sizes and optimiser follow
Metz et al., "Unrolled GANs", ICLR 2017 (2x128 ReLU MLPs, z of 256, Adam beta1 0.5, batch 512). Their
learning rate of 1e-4 needs 25k+ steps; the default here is 1e-3 over 3,000 steps, which captures the
modes within ~30 s on 2 CPU cores (``lr=1e-4 steps=25000`` gives the paper's schedule).
Evaluated with the VEEGAN/PacGAN protocol (``eval.modes``): modes captured and high-quality share.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .. import nets
from ..config import TrainConfig, param, require
from ..data import get_distribution
from ..engine.batches import SampledBatches
from ..eval.modes import mode_coverage
from ..losses import discriminator_loss_minimax, generator_loss_minimax, generator_loss_nonsaturating
from ..viz.grid import figure_to_tensor
from .base import EvalResult, Method, register_method


@dataclass
class GAN2DConfig(TrainConfig):
    dataset: str = param("ring8", help="ring8 or grid25 (PacGAN settings)")
    steps: int = param(3000, ge=1)
    batch_size: int = param(512, ge=1)
    lr: float = param(1e-3, gt=0, help="Adam learning rate of G and D (Unrolled GAN: 1e-4 over 25k+ steps)")
    betas: tuple[float, float] = param((0.5, 0.999), help="Adam betas")
    loss: str = param("nonsaturating", choices=("minimax", "nonsaturating"), help="generator loss")
    z_dim: int = param(256, ge=1)
    hidden: int = param(128, ge=1)
    g_depth: int = param(2, ge=1)
    d_depth: int = param(2, ge=1)
    d_steps: int = param(1, ge=1, help="discriminator updates per generator update")
    eval_samples: int = param(2500, ge=1, help="samples for the mode-coverage protocol")
    log_every: int = param(250, ge=1)
    image_every: int = param(1000, ge=0)
    channels_last: bool = param(False)

    def check(self):
        require(all(0 <= b < 1 for b in self.betas), "betas", self.betas, "each beta must be in [0, 1)")


@register_method
class GAN2D(Method):
    name = "gan2d"
    summary = "MLP GAN on ring8/grid25 with the minimax or non-saturating loss; mode-coverage eval"
    paper = "Goodfellow et al. 2014; protocol of Srivastava et al. 2017 (VEEGAN) / Lin et al. 2018 (PacGAN)"
    Config = GAN2DConfig
    generative = True
    trainable = ("G", "D")
    extra_state = ("fixed_z",)

    def __init__(self, cfg: GAN2DConfig):
        super().__init__(cfg)
        self.dist = get_distribution(cfg.dataset)
        d = self.dist.dim
        self.G = nets.create("mlp_generator", in_dim=cfg.z_dim, out_dim=d, hidden=cfg.hidden, depth=cfg.g_depth)
        self.D = nets.create("mlp_discriminator", in_dim=d, hidden=cfg.hidden, depth=cfg.d_depth)
        self.fixed_z = torch.randn(cfg.eval_samples, cfg.z_dim, generator=torch.Generator().manual_seed(cfg.seed))
        self.g_loss = generator_loss_minimax if cfg.loss == "minimax" else generator_loss_nonsaturating

    def configure_optimizers(self):
        c = self.cfg
        return {"D": torch.optim.Adam(self.D.parameters(), lr=c.lr, betas=c.betas),
                "G": torch.optim.Adam(self.G.parameters(), lr=c.lr, betas=c.betas)}

    def batches(self, rank, world):
        return SampledBatches(self.dist, self.cfg.batch_size * self.cfg.d_steps, self.cfg.seed, rank, world)

    def noise(self, n):
        return torch.randn(n, self.cfg.z_dim, device=self.device)

    def discriminator_step(self, x):                       # x: (B, 2) real
        fake = self.G(self.noise(len(x))).detach()
        loss = discriminator_loss_minimax(self.D(x), self.D(fake))
        self.optimize("D", loss)
        return loss

    def generator_step(self, n):
        loss = self.g_loss(self.D(self.G(self.noise(n))))
        self.optimize("G", loss)
        return loss

    def training_step(self, batch, step):
        xs = batch["x"].to(self.device).chunk(self.cfg.d_steps)
        d_loss = sum(self.discriminator_step(x) for x in xs) / len(xs)
        g_loss = self.generator_step(len(xs[0]))
        return {"loss_d": d_loss.item(), "loss_g": g_loss.item()}

    @torch.no_grad()
    def sample(self, n, **kw):
        z = self.fixed_z[:n] if n <= len(self.fixed_z) else torch.randn(
            n, self.cfg.z_dim, generator=torch.Generator().manual_seed(kw.get("seed", 0)))
        return self.G(z.to(self.device)).float().cpu()

    def figure(self, samples: torch.Tensor, title: str = ""):
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        ax.scatter(samples[:, 0], samples[:, 1], s=3, alpha=0.4, c="tab:blue", label="samples")
        m = self.dist.modes
        ax.scatter(m[:, 0], m[:, 1], s=40, marker="x", c="red", label="modes")
        lim = float(m.abs().max()) * 1.5 + 0.5
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_title(title, fontsize=9)
        ax.legend(loc="upper right", fontsize=7)
        fig.tight_layout()
        return fig

    def images(self):
        s = self.sample(self.cfg.eval_samples)
        return {"samples": figure_to_tensor(self.figure(s, f"{self.cfg.dataset} step {self.step + 1}"))}

    def evaluate(self, protocol=None):
        s = self.sample(self.cfg.eval_samples)
        res = mode_coverage(s, self.dist.modes, self.dist.sigma)
        protocol = {**res.pop("protocol"), "dataset": self.cfg.dataset, "loss": self.cfg.loss,
                    "step": self.step, "noise_seed": self.cfg.seed}
        path = Path(self.run_dir or ".") / "samples.png"
        fig = self.figure(s, f"{self.cfg.dataset} {self.cfg.loss}: {res['modes']}/{len(self.dist.modes)} modes, "
                             f"{100 * res['hq_fraction']:.1f}% HQ")
        fig.savefig(path, dpi=100)
        import matplotlib.pyplot as plt
        plt.close(fig)
        return EvalResult(res, protocol, {"scatter": str(path)})

    def save_samples(self, n, path, **kw):
        fig = self.figure(self.sample(n, **kw), f"{self.cfg.dataset}: {n} samples, step {self.step}")
        fig.savefig(path, dpi=100)
        import matplotlib.pyplot as plt
        plt.close(fig)
        return Path(path)
