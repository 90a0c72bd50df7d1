"""WGAN: Arjovsky, Chintala, Bottou, "Wasserstein GAN", ICML 2017, https://arxiv.org/abs/1701.07875.

Algorithm 1 as printed (defaults alpha = 5e-5, c = 0.01, m = 64, n_critic = 5, RMSProp):

    while theta has not converged:
        for t = 0, ..., n_critic:
            sample {x_i} ~ P_r, {z_i} ~ p(z)               (a batch of m each)
            g_w <- grad_w [1/m sum f_w(x_i) - 1/m sum f_w(g_theta(z_i))]
            w <- w + alpha RMSProp(w, g_w);   w <- clip(w, -c, c)
        sample {z_i} ~ p(z)
        g_theta <- -grad_theta 1/m sum f_w(g_theta(z_i));   theta <- theta - alpha RMSProp(theta, g_theta)

The critic is the DCGAN discriminator without a sigmoid (scores). ``schedule=original`` is the authors'
code: 100 critic iterations during the first 25 generator iterations and every 500th.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import param
from ..losses import critic_loss_wasserstein, generator_loss_wasserstein
from ._image_gan import ImageGAN, ImageGANConfig
from ..engine.method import register_method


@dataclass
class WGANConfig(ImageGANConfig):
    steps: int = param(5000, ge=1, help="generator iterations")
    batch_size: int = param(64, ge=1, help="m, the batch size")
    lr: float = param(5e-5, gt=0, help="alpha, the RMSProp learning rate of critic and generator")
    clip: float = param(0.01, gt=0, help="c, the clipping parameter")
    n_critic: int = param(5, ge=1, help="critic iterations per generator iteration")
    optimizer: str = param("rmsprop", choices=("rmsprop",), help="Algorithm 1's optimiser")
    schedule: str = param("paper", choices=("paper", "original"),
                          help="paper: n_critic always; original: 100 critic steps for G steps < 25 and every 500th")
    critic_norm: str = param("batch", choices=("batch", "none"), help="normalisation in the critic (DCGAN: batch)")


@register_method
class WGAN(ImageGAN):
    name = "wgan"
    summary = "Wasserstein GAN, Algorithm 1: weight clipping, RMSProp, n_critic critic steps"
    paper = "Arjovsky et al. 2017, Wasserstein GAN"
    Config = WGANConfig

    def __init__(self, cfg: WGANConfig):
        super().__init__(cfg)
        self.G = self.make_generator()
        self.D = self.make_discriminator(norm=cfg.critic_norm)            # the critic f_w: scores, no sigmoid
        self.G_ema = self.make_ema()

    def configure_optimizers(self):
        c = self.cfg
        return {"D": torch.optim.RMSprop(self.D.parameters(), lr=c.lr),
                "G": torch.optim.RMSprop(self.G.parameters(), lr=c.lr)}

    def critic_iterations(self, step: int) -> int:
        if self.cfg.schedule == "original" and (step < 25 or step % 500 == 0):
            return 100
        return self.cfg.n_critic

    @torch.no_grad()
    def clip_weights(self) -> None:
        for p in self.D.parameters():
            p.clamp_(-self.cfg.clip, self.cfg.clip)

    def critic_step(self, x):                                            # x: (m, C, H, W) ~ P_r
        fake = self.G(self.noise(len(x))).detach()                       # g_theta(z), z ~ p(z)
        loss = critic_loss_wasserstein(self.D(x), self.D(fake))          # -(E f(x) - E f(g(z)))
        self.optimize("D", loss)
        self.clip_weights()                                              # w <- clip(w, -c, c)
        return loss

    def generator_step(self, m):
        loss = generator_loss_wasserstein(self.D(self.G(self.noise(m))))
        self.optimize("G", loss)
        return loss

    def training_step(self, batch, step):
        n = self.critic_iterations(step)
        losses = [self.critic_step(x) for x, _ in self.real_batches(batch, n)]
        g_loss = self.generator_step(self.cfg.batch_size)
        d_loss = sum(losses) / n
        return {"loss_d": d_loss.item(), "wasserstein_estimate": -d_loss.item(), "loss_g": g_loss.item()}
