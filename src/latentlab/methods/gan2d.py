"""MLP GAN on 2-D Gaussian mixtures (``ring8``, ``grid25``): mode collapse and its remedies in one harness.

Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014: the discriminator loss -V(D, G) and the
``minimax`` generator loss E[log(1 - D(G(z)))] or the ``nonsaturating`` -E[log D(G(z))].

The default is the non-saturating GAN **with the R1 penalty** (Mescheder et al., ICML 2018, Eq. 9;
``r1`` = gamma), a 2-d noise, a generator twice the discriminator's width, Adam betas (0, 0.99) as in the
R1 paper's and StyleGAN's code, and a learning rate that decays linearly to 0 so that samples settle
inside the sigma = 0.01 modes. This recipe was chosen on this project's 2-D mixtures for a CPU budget; it
is not any paper's setting. ``benchmarks/gan2d.py`` measures it over 10 seeds: on ring8 the recipe
without the penalty (``r1=0``) captures the 8 modes as well, on grid25 the penalty is what keeps all 25
modes at high quality. The course's mode collapse and its remedies are options of the same harness:

- the Unrolled GAN setting, ``z_dim=256 g_hidden=128 d_hidden=128 betas=[0.5,0.999] lr=1e-3
  lr_decay=none r1=0``: the plain GAN hops from mode to mode and ends on one in most seeds;
- ``r1=gamma``: R1, a penalty on the discriminator's gradient at the data;
- ``pack=m``: PacGAN (Lin et al., NeurIPS 2018), the discriminator judges m samples at once;
- ``loss=wasserstein``: WGAN-GP (Gulrajani et al., NeurIPS 2017, Algorithm 1), critic loss + ``gp``
  times the gradient penalty, ``d_steps`` critic updates per generator update.

Papers' values, for reference (their networks and training lengths differ): Unrolled GAN (Metz et al.,
ICLR 2017) 2x128 ReLU MLPs, z of 256, Adam 1e-4 (D) / 1e-3 (G), 25k+ steps; PacGAN 4x400 BN-ReLU G,
maxout D, Adam 1e-4, beta1 0.8, batch 100. Evaluated with the VEEGAN/PacGAN protocol (``eval.modes``).
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
from ..fileio import save_figure
from ..losses import (critic_loss_wasserstein, discriminator_loss_minimax, generator_loss_minimax,
                      generator_loss_nonsaturating, generator_loss_wasserstein, gradient_penalty, r1_penalty)
from ..viz.grid import figure_to_tensor
from ..engine.method import Method, linear_decay, register_method
from ..results import EvalResult


@dataclass
class GAN2DConfig(TrainConfig):
    dataset: str = param("ring8", help="ring8 or grid25 (PacGAN settings)")
    steps: int = param(6000, ge=1, help="generator steps (Unrolled GAN: 25k+ at lr 1e-4)")
    batch_size: int = param(512, ge=1, help="discriminator inputs per step (each a pack of `pack` samples)")
    lr: float = param(2e-3, gt=0, help="Adam learning rate of G and D, chosen for a CPU budget "
                                       "(Unrolled GAN: 1e-4 for D, 1e-3 for G; PacGAN: 1e-4)")
    betas: tuple[float, float] = param((0.0, 0.99), help="Adam betas (R1 paper / StyleGAN: (0, 0.99); "
                                                         "Unrolled GAN, DCGAN: (0.5, 0.999))")
    lr_decay: str = param("linear", choices=("linear", "none"), help="learning rate: linear decay to 0 at `steps` "
                          "(resuming with a larger `steps` stretches the rest), or constant")
    loss: str = param("nonsaturating", choices=("minimax", "nonsaturating", "wasserstein"),
                      help="generator loss; wasserstein uses the WGAN-GP critic loss and `gp`")
    r1: float = param(0.4, ge=0, help="R1 penalty gamma on real samples (Mescheder et al. 2018); 0: plain GAN")
    gp: float = param(10.0, ge=0, help="gradient-penalty lambda for loss=wasserstein (WGAN-GP paper: 10)")
    pack: int = param(1, ge=1, help="PacGAN packing degree m: D sees m samples concatenated (PacGAN: 2-4)")
    z_dim: int = param(2, ge=1, help="noise dimension (Unrolled GAN: 256)")
    g_hidden: int = param(256, ge=1, help="generator width (Unrolled GAN: 128; PacGAN: 400)")
    d_hidden: int = param(128, ge=1, help="discriminator width (Unrolled GAN: 128)")
    g_depth: int = param(2, ge=1, help="generator hidden layers")
    d_depth: int = param(2, ge=1, help="discriminator hidden layers")
    d_steps: int = param(1, ge=1, help="discriminator updates per generator update (WGAN-GP: 5)")
    eval_samples: int = param(2500, ge=1, help="samples for the mode-coverage protocol")
    log_every: int = param(500, ge=1)
    image_every: int = param(2000, ge=0)
    channels_last: bool = param(False)

    def check(self):
        require(all(0 <= b < 1 for b in self.betas), "betas", self.betas, "each beta must be in [0, 1)")
        require(not (self.loss == "wasserstein" and self.r1 > 0), "r1", self.r1,
                "loss=wasserstein uses the gradient penalty `gp`; set r1=0")


@register_method
class GAN2D(Method):
    protocols = ("modes",)
    name = "gan2d"
    summary = "MLP GAN on ring8/grid25: plain GAN, R1 (default), PacGAN and WGAN-GP; mode-coverage eval"
    paper = ("Goodfellow et al. 2014; Mescheder et al. 2018 (R1); Lin et al. 2018 (PacGAN); "
             "protocol of Srivastava et al. 2017 (VEEGAN) / PacGAN")
    Config = GAN2DConfig
    generative = True
    trainable = ("G", "D")
    extra_state = ("fixed_z",)

    def __init__(self, cfg: GAN2DConfig):
        super().__init__(cfg)
        self.dist = get_distribution(cfg.dataset)
        d = self.dist.dim
        self.G = nets.create("mlp_generator", in_dim=cfg.z_dim, out_dim=d, hidden=cfg.g_hidden, depth=cfg.g_depth)
        self.D = nets.create("mlp_discriminator", in_dim=d * cfg.pack, hidden=cfg.d_hidden, depth=cfg.d_depth)
        self.fixed_z = torch.randn(cfg.eval_samples, cfg.z_dim, generator=torch.Generator().manual_seed(cfg.seed))
        self.g_loss = {"minimax": generator_loss_minimax, "nonsaturating": generator_loss_nonsaturating,
                       "wasserstein": generator_loss_wasserstein}[cfg.loss]

    def configure_optimizers(self):
        c = self.cfg
        return {"D": torch.optim.Adam(self.D.parameters(), lr=c.lr, betas=c.betas),
                "G": torch.optim.Adam(self.G.parameters(), lr=c.lr, betas=c.betas)}

    def configure_schedulers(self):
        return linear_decay(self.optimizers, self.cfg.steps) if self.cfg.lr_decay == "linear" else {}

    def batches(self, rank, world):
        c = self.cfg
        return SampledBatches(self.dist, c.batch_size * c.pack * c.d_steps, c.seed, rank, world)

    def packed(self, x):                                   # (B * m, 2) -> (B, 2m): PacGAN's packing
        return x.reshape(len(x) // self.cfg.pack, -1)

    def discriminator_step(self, x):                       # x: (B * m, 2) real
        c = self.cfg
        fake = self.G(torch.randn(len(x), c.z_dim, device=self.device))        # (B * m, 2), graph kept for G
        real = self.packed(x).requires_grad_(c.r1 > 0)                        # (B, 2m)
        D_real = self.differentiable(self.D) if c.r1 > 0 else self.D          # R1 differentiates D(real)
        real_logits, fake_logits = D_real(real), self.D(self.packed(fake.detach()))
        if c.loss == "wasserstein":
            loss = critic_loss_wasserstein(real_logits, fake_logits)
            if c.gp > 0:
                loss = loss + c.gp * gradient_penalty(self.differentiable(self.D), real, self.packed(fake.detach()))
        else:
            loss = discriminator_loss_minimax(real_logits, fake_logits)
        if c.r1 > 0:
            loss = loss + c.r1 / 2 * r1_penalty(real_logits, real)
        self.optimize("D", loss)
        return loss, fake

    def generator_step(self, fake):                        # the last D step's fake batch, G unchanged since
        loss = self.g_loss(self.D(self.packed(fake)))
        self.optimize("G", loss)
        return loss

    def training_step(self, batch, step):
        xs = batch["x"].to(self.device).chunk(self.cfg.d_steps)
        d_losses = [self.discriminator_step(x) for x in xs]
        g_loss = self.generator_step(d_losses[-1][1])
        return {"loss_d": sum(l.item() for l, _ in d_losses) / len(d_losses), "loss_g": g_loss.item()}

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
        return {"samples": figure_to_tensor(self.figure(s, f"{self.cfg.dataset} step {self.step}"))}

    def recipe(self) -> str:
        c = self.cfg
        if c.loss == "wasserstein":
            return f"WGAN-GP (gp {c.gp:g})" + (f", pack {c.pack}" if c.pack > 1 else "")
        parts = [c.loss] + ([f"R1 {c.r1:g}"] if c.r1 > 0 else []) + ([f"pack {c.pack}"] if c.pack > 1 else [])
        return ", ".join(parts)

    def evaluate(self, protocol=None):
        s = self.sample(self.cfg.eval_samples)
        res = mode_coverage(s, self.dist.modes, self.dist.sigma)
        protocol = {**res.pop("protocol"), "dataset": self.cfg.dataset, "loss": self.cfg.loss,
                    "recipe": self.recipe(), "step": self.step, "noise_seed": self.cfg.seed}
        path = Path(self.run_dir or ".") / "samples.png"
        fig = self.figure(s, f"{self.cfg.dataset} {self.recipe()}: {res['modes']}/{len(self.dist.modes)} modes, "
                             f"{100 * res['hq_fraction']:.1f}% HQ")
        save_figure(fig, path, dpi=100)
        import matplotlib.pyplot as plt
        plt.close(fig)
        summary = (f"{self.cfg.dataset}: {res['modes']}/{len(self.dist.modes)} modes captured, "
                   f"{100 * res['hq_fraction']:.1f}% of samples within 3 sigma of a mode ({self.recipe()})")
        return EvalResult(res, protocol, {"scatter": str(path)}, summary)

    def save_samples(self, n, path, **kw):
        fig = self.figure(self.sample(n, **kw), f"{self.cfg.dataset}: {n} samples, step {self.step}")
        save_figure(fig, path, dpi=100)
        import matplotlib.pyplot as plt
        plt.close(fig)
        return Path(path)
