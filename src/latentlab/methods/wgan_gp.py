"""WGAN-GP: Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017,
https://arxiv.org/abs/1704.00028, Algorithm 1 (defaults lambda = 10, n_critic = 5, Adam betas (0, 0.9);
lr 1e-3 here against the paper's 1e-4, for a CPU budget, see the config help):

    for t = 1, ..., n_critic:
        for a batch: x ~ P_r, z ~ p(z), eps ~ U[0, 1]
            x~ = G(z);  x^ = eps x + (1 - eps) x~
            L = D(x~) - D(x) + lambda (||grad_x^ D(x^)||_2 - 1)^2
        w <- Adam(grad_w mean L)
    theta <- Adam(grad_theta mean -D(G(z)))

No BatchNorm in the critic (the penalty is per sample): ``critic_norm`` none (default) or layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import param, require
from ..losses import critic_loss_wasserstein, generator_loss_wasserstein, gradient_penalty
from ._image_gan import ImageGAN, ImageGANConfig
from ..engine.method import register_method


@dataclass
class WGANGPConfig(ImageGANConfig):
    steps: int = param(5000, ge=1, help="generator iterations (the paper's CIFAR-10 runs: 200k)")
    batch_size: int = param(64, ge=1, help="m, the batch size")
    lr: float = param(1e-3, gt=0, help="Adam learning rate (the paper: 1e-4, which draws grey blobs after minutes "
                                       "of CPU; 1e-3 chosen on validation FID for a CPU budget)")
    betas: tuple[float, float] = param((0.0, 0.9), help="Adam betas")
    gp_lambda: float = param(10.0, ge=0, help="lambda, the gradient-penalty weight")
    n_critic: int = param(5, ge=1, help="critic iterations per generator iteration")
    critic_norm: str = param("none", choices=("none", "layer"), help="critic normalisation (never batch)")

    def check(self):
        super().check()
        require(all(0 <= b < 1 for b in self.betas), "betas", self.betas, "each beta must be in [0, 1)")


@register_method
class WGANGP(ImageGAN):
    name = "wgan_gp"
    summary = "WGAN with gradient penalty (lambda 10, n_critic 5, Adam betas (0, 0.9), no BatchNorm in the critic)"
    paper = "Gulrajani et al. 2017, Improved Training of Wasserstein GANs"
    Config = WGANGPConfig

    def __init__(self, cfg: WGANGPConfig):
        super().__init__(cfg)
        self.G = self.make_generator()
        self.D = self.make_discriminator(norm=cfg.critic_norm)
        self.G_ema = self.make_ema()

    def configure_optimizers(self):
        c = self.cfg
        return {"D": torch.optim.Adam(self.D.parameters(), lr=c.lr, betas=c.betas),
                "G": torch.optim.Adam(self.G.parameters(), lr=c.lr, betas=c.betas)}

    def critic_step(self, x):                                            # x: (m, C, H, W) ~ P_r
        fake = self.G(self.noise(len(x))).detach()
        gp = gradient_penalty(self.differentiable(self.D), x, fake)      # E (||grad D(x^)|| - 1)^2
        w = critic_loss_wasserstein(self.D(x), self.D(fake))             # E D(x~) - E D(x) = -W estimate
        loss = w + self.cfg.gp_lambda * gp
        self.optimize("D", loss)
        return loss, gp, w

    def generator_step(self, m):
        loss = generator_loss_wasserstein(self.D(self.G(self.noise(m))))
        self.optimize("G", loss)
        return loss

    def training_step(self, batch, step):
        out = [self.critic_step(x) for x, _ in self.real_batches(batch, self.cfg.n_critic)]
        g_loss = self.generator_step(self.cfg.batch_size)
        n = len(out)
        return {"loss_d": (sum(o[0] for o in out) / n).item(), "gp": (sum(o[1] for o in out) / n).item(),
                "wasserstein_estimate": -(sum(o[2] for o in out) / n).item(),
                "loss_g": g_loss.item()}
