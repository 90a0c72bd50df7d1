"""Conditional GAN: Mirza & Osindero, "Conditional Generative Adversarial Nets", 2014,
https://arxiv.org/abs/1411.1784. Both players see the label y:

    min_G max_D  E[log D(x | y)] + E[log(1 - D(G(z | y) | y))]

G concatenates a label embedding to z; D is conditioned by concatenating one-hot label maps to its
input (the paper) or by projection (Miyato & Koyama 2018, ``condition=projection``). DCGAN networks,
non-saturating G loss, Adam at 1e-3, betas (0.5, 0.99) (DCGAN's 2e-4, (0.5, 0.999) one key away; the
faster rate chosen on validation for a CPU budget). Evaluated also by class consistency.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import param, require
from ..losses import discriminator_loss_minimax, generator_loss_nonsaturating
from ._image_gan import ImageGAN, ImageGANConfig
from ..engine.method import register_method


@dataclass
class CGANConfig(ImageGANConfig):
    steps: int = param(5000, ge=1, help="generator steps")
    batch_size: int = param(128, ge=1, help="images per step (DCGAN's 128; Mirza & Osindero: 100)")
    lr: float = param(1e-3, gt=0, help="Adam learning rate of G and D (DCGAN's is 2e-4; Mirza & Osindero used SGD "
                                       "at 0.1 decaying to 1e-6, momentum 0.5 rising to 0.7; 1e-3 here for a CPU "
                                       "budget, chosen on validation)")
    betas: tuple[float, float] = param((0.5, 0.99), help="Adam betas (DCGAN's: (0.5, 0.999))")
    condition: str = param("concat", choices=("concat", "projection"), help="how D sees the label")

    def check(self):
        super().check()
        require(all(0 <= b < 1 for b in self.betas), "betas", self.betas, "each beta must be in [0, 1)")


@register_method
class CGAN(ImageGAN):
    name = "cgan"
    summary = "Conditional GAN (label into G; D by concatenation or projection); class consistency"
    paper = "Mirza & Osindero 2014, Conditional Generative Adversarial Nets"
    Config = CGANConfig
    conditional = True

    def __init__(self, cfg: CGANConfig):
        super().__init__(cfg)
        self.G = self.make_generator()                                    # G(z, y)
        self.D = self.make_discriminator(norm="batch", num_classes=self.K, condition=cfg.condition)
        self.G_ema = self.make_ema()

    def configure_optimizers(self):
        c = self.cfg
        return {"D": torch.optim.Adam(self.D.parameters(), lr=c.lr, betas=c.betas),
                "G": torch.optim.Adam(self.G.parameters(), lr=c.lr, betas=c.betas)}

    def discriminator_step(self, x, y):                 # x: (B, C, H, W), y: (B,) real labels
        y_fake = self.random_labels(len(x))
        fake = self.G(self.noise(len(x)), y_fake)          # graph kept for the G step
        loss = discriminator_loss_minimax(self.D(x, y), self.D(fake.detach(), y_fake))
        self.optimize("D", loss)
        return loss, fake, y_fake

    def generator_step(self, fake, y):                  # the D step's fakes and their labels
        loss = generator_loss_nonsaturating(self.D(fake, y))
        self.optimize("G", loss)
        return loss

    def training_step(self, batch, step):
        x, y = self.real(batch)
        d_loss, fake, y_fake = self.discriminator_step(x, y)
        g_loss = self.generator_step(fake, y_fake)
        return {"loss_d": d_loss.item(), "loss_g": g_loss.item()}
