"""DCGAN: Radford et al., "Unsupervised Representation Learning with Deep Convolutional Generative
Adversarial Networks", ICLR 2016, https://arxiv.org/abs/1511.06434.

Networks per the paper's guidelines (``nets/dcgan.py``); Goodfellow et al.'s non-saturating loss;
paper defaults: Adam lr 2e-4, betas (0.5, 0.999), batch 128. One D update, then one G update:

    D:  min  -E[log D(x)] - E[log(1 - D(G(z)))]
    G:  min  -E[log D(G(z))]
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import param, require
from ..losses import discriminator_loss_minimax, generator_loss_nonsaturating
from ._image_gan import ImageGAN, ImageGANConfig
from .base import register_method


@dataclass
class DCGANConfig(ImageGANConfig):
    steps: int = param(5000, ge=1, help="generator steps")
    batch_size: int = param(128, ge=1)
    lr: float = param(2e-4, gt=0, help="Adam learning rate of G and D")
    betas: tuple[float, float] = param((0.5, 0.999), help="Adam betas")

    def check(self):
        super().check()
        require(all(0 <= b < 1 for b in self.betas), "betas", self.betas, "each beta must be in [0, 1)")


@register_method
class DCGAN(ImageGAN):
    name = "dcgan"
    summary = "DCGAN (strided convs, BatchNorm, non-saturating loss); FID/KID, precision/recall"
    paper = "Radford et al. 2016, Unsupervised Representation Learning with Deep Convolutional GANs"
    Config = DCGANConfig

    def __init__(self, cfg: DCGANConfig):
        super().__init__(cfg)
        self.G = self.make_generator()
        self.D = self.make_discriminator(norm="batch")
        self.G_ema = self.make_ema()

    def configure_optimizers(self):
        c = self.cfg
        return {"D": torch.optim.Adam(self.D.parameters(), lr=c.lr, betas=c.betas),
                "G": torch.optim.Adam(self.G.parameters(), lr=c.lr, betas=c.betas)}

    def discriminator_step(self, x):                       # x: (B, C, H, W) in [-1, 1]
        fake = self.G(self.noise(len(x))).detach()
        loss = discriminator_loss_minimax(self.D(x), self.D(fake))
        self.optimize("D", loss)
        return loss

    def generator_step(self, n):
        loss = generator_loss_nonsaturating(self.D(self.G(self.noise(n))))
        self.optimize("G", loss)
        self.ema_update()
        return loss

    def training_step(self, batch, step):
        x, _ = self.real(batch)
        d_loss = self.discriminator_step(x)
        g_loss = self.generator_step(len(x))
        return {"loss_d": d_loss.item(), "loss_g": g_loss.item(), **self.track_best(step)}
