"""ACGAN: Odena, Olah, Shlens, "Conditional Image Synthesis with Auxiliary Classifier GANs", ICML 2017,
https://arxiv.org/abs/1610.09585. G(z, c); D gives P(S | X) and P(C | X) (Eq. 1-2):

    L_S = E[log P(S = real | X_real)] + E[log P(S = fake | X_fake)]
    L_C = E[log P(C = c | X_real)]    + E[log P(C = c | X_fake)]
    D maximises L_S + L_C;  G maximises L_C - L_S (here: the non-saturating form of -L_S).

The class loss is cross-entropy on logits (``losses.acgan_class_loss``: no softmax before it).
Deviation (``d_fake_class=false``, default): D's L_C is on reals only; the paper's form, where D also learns
the classes of fakes, is ``d_fake_class=true`` (it lets D adopt G's wrong labelling, see the config help).
DCGAN networks, Adam at 1e-3, betas (0.5, 0.99) (the paper's 2e-4, (0.5, 0.999) one key away; chosen on
validation for a CPU budget); D's head returns (B, 1 + K) logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import param, require
from ..losses import acgan_class_loss, discriminator_loss_minimax, generator_loss_nonsaturating
from ._image_gan import ImageGAN, ImageGANConfig
from ..engine.method import register_method


@dataclass
class ACGANConfig(ImageGANConfig):
    steps: int = param(5000, ge=1, help="generator steps (ACGAN: 50000)")
    batch_size: int = param(128, ge=1, help="images per step (ACGAN: 100)")
    lr: float = param(1e-3, gt=0, help="Adam learning rate of G and D (ACGAN: 2e-4; 1e-3 here for a CPU budget, "
                                       "chosen on validation)")
    betas: tuple[float, float] = param((0.5, 0.99), help="Adam betas (ACGAN: (0.5, 0.999))")
    class_weight: float = param(1.0, ge=0, help="weight of L_C against L_S")
    d_fake_class: bool = param(False, help="D's L_C also on fakes, as Odena et al.'s Eq. 2 (true); the default "
                                           "(false) trains D's classifier on reals only, so D cannot learn G's "
                                           "labelling of its own fakes (with true, 150 s runs drew the wrong digit for "
                                           "some classes: 71% class consistency against 99.5%, on validation)")

    def check(self):
        super().check()
        require(all(0 <= b < 1 for b in self.betas), "betas", self.betas, "each beta must be in [0, 1)")


@register_method
class ACGAN(ImageGAN):
    name = "acgan"
    summary = "Auxiliary-classifier GAN (D predicts source and class; CE on logits); class consistency"
    paper = "Odena et al. 2017, Conditional Image Synthesis with Auxiliary Classifier GANs"
    Config = ACGANConfig
    conditional = True

    def __init__(self, cfg: ACGANConfig):
        super().__init__(cfg)
        self.G = self.make_generator()                                    # G(z, c)
        self.D = self.make_discriminator(norm="batch", aux_classes=self.K)  # (B, 1 + K)
        self.G_ema = self.make_ema()

    def configure_optimizers(self):
        c = self.cfg
        return {"D": torch.optim.Adam(self.D.parameters(), lr=c.lr, betas=c.betas),
                "G": torch.optim.Adam(self.G.parameters(), lr=c.lr, betas=c.betas)}

    def discriminator_step(self, x, y):                 # x: (B, C, H, W), y: (B,)
        c_fake = self.random_labels(len(x))
        fake = self.G(self.noise(len(x)), c_fake)         # graph kept for the G step
        out_real, out_fake = self.D(x), self.D(fake.detach())  # (B, 1 + K) each
        l_s = discriminator_loss_minimax(out_real[:, 0], out_fake[:, 0])
        l_c = acgan_class_loss(out_real[:, 1:], y)
        if self.cfg.d_fake_class:
            l_c = l_c + acgan_class_loss(out_fake[:, 1:], c_fake)
        loss = l_s + self.cfg.class_weight * l_c
        self.optimize("D", loss)
        return loss, l_c, fake, c_fake

    def generator_step(self, fake, c):                  # the D step's fakes and their classes
        out = self.D(fake)
        loss = generator_loss_nonsaturating(out[:, 0]) + self.cfg.class_weight * acgan_class_loss(out[:, 1:], c)
        self.optimize("G", loss)
        return loss

    def training_step(self, batch, step):
        x, y = self.real(batch)
        d_loss, l_c, fake, c_fake = self.discriminator_step(x, y)
        g_loss = self.generator_step(fake, c_fake)
        return {"loss_d": d_loss.item(), "loss_class": l_c.item(), "loss_g": g_loss.item()}
