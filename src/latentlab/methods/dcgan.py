"""DCGAN: Radford et al., "Unsupervised Representation Learning with Deep Convolutional Generative
Adversarial Networks", ICLR 2016, https://arxiv.org/abs/1511.06434.

Networks per the paper's guidelines (``nets/dcgan.py``); Goodfellow et al.'s non-saturating loss;
batch 128 as the paper. The paper's Adam (lr 2e-4, betas (0.5, 0.999)) and width are one key away
(``lr=2e-4 betas=[0.5,0.999] ngf=128 ndf=128``); the defaults (lr 1e-3, betas (0, 0.99), ngf = ndf = 32)
were chosen on the validation FID after equal CPU time (docs/gans.md). One D update, then one G update on the
same fake batch (G is unchanged in between, so one G forward serves both):

    D:  min  -E[log D(x)] - E[log(1 - D(G(z)))]
    G:  min  -E[log D(G(z))]
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import param, require
from ..losses import discriminator_loss_minimax, generator_loss_nonsaturating
from ._image_gan import ImageGAN, ImageGANConfig
from ..engine.method import register_method


@dataclass
class DCGANConfig(ImageGANConfig):
    steps: int = param(5000, ge=1, help="generator steps")
    batch_size: int = param(128, ge=1)
    lr: float = param(1e-3, gt=0, help="Adam learning rate of G and D (the paper: 2e-4; 1e-3 here: at 2e-4 the "
                                       "digits are far from formed after 5 minutes of CPU)")
    betas: tuple[float, float] = param((0.0, 0.99), help="Adam betas (the paper: (0.5, 0.999); (0, 0.99) gave the "
                                                         "best validation FID after equal CPU time)")

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
        fake = self.G(self.noise(len(x)))                  # (B, C, H, W), graph kept for the G step
        loss = discriminator_loss_minimax(self.D(x), self.D(fake.detach()))
        self.optimize("D", loss)
        return loss, fake

    def generator_step(self, fake):                        # the D step's fakes, scored by the updated D
        loss = generator_loss_nonsaturating(self.D(fake))
        self.optimize("G", loss)
        return loss

    def training_step(self, batch, step):
        x, _ = self.real(batch)
        d_loss, fake = self.discriminator_step(x)
        g_loss = self.generator_step(fake)
        return {"loss_d": d_loss.item(), "loss_g": g_loss.item()}
