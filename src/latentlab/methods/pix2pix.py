"""Pix2Pix: Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks", CVPR 2017,
https://arxiv.org/abs/1611.07004. A conditional GAN on paired data (x, y):

    G* = arg min_G max_D  L_cGAN(G, D) + lambda L_L1(G),                                   (Eq. 4)
    L_cGAN = E[log D(x, y)] + E[log(1 - D(x, G(x)))],  L_L1 = E ||y - G(x)||_1,  lambda = 100

G a U-Net with skips, D a PatchGAN on the concatenated (input, output) pair, no z: dropout is the noise
(Sec. 3.1). D's objective is halved "to slow down the rate at which D learns relative to G" (Sec. 3.3); G
takes the non-saturating log D(x, G(x)) step; Adam 2e-4, betas (0.5, 0.999); the learning rate constant for
the first half of training, then linear to 0 (the authors' code: 100 + 100 epochs). Defaults are the
reference implementation's, sized for 28-32 px, except the widths (32, not 64: see ``ngf``): U-Net depth 5 at 32 px (28 is padded to 32), PatchGAN with
one stride-2 layer (16-px receptive field, the nearest to 70/256 of a 32-px image; ``d_layers=3`` is the
paper's 70x70). Dropout in the first three decoder layers, as the paper's appendix (the authors' code puts it in
the 8 x ngf-wide blocks after the innermost one only, so at depth 5 it has none). The authors train with batch 1 (facades); 64 here: a CPU needs the batch, and BatchNorm then
uses real batch statistics. Evaluation in eval mode (running statistics, no dropout); the authors' test script
keeps train mode by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from .. import nets
from ..config import TrainConfig, param, require
from ..data import load_dataset
from ..data.paired import TARGET_DOMAIN
from ..engine.batches import ShuffledBatches
from ..engine.method import Method, linear_decay, register_method
from ..errors import ConfigError
from ..eval.generative import VAL_SPLIT_SEED
from ..losses import discriminator_loss_minimax, generator_loss_nonsaturating
from ..modules import eval_mode
from ..nets.translation import patch_layers
from ..results import EvalResult
from ..viz.grid import labelled_rows, save_image


@dataclass
class Pix2PixConfig(TrainConfig):
    dataset: str = param("mnist_m_colourise", help="a paired dataset (image -> target_image): mnist_m_colourise, "
                                                   "mnist_edges, mnist_m_edges")
    steps: int = param(3000, ge=1, help="generator steps")
    batch_size: int = param(64, ge=1, help="pairs per step (the authors: 1 on facades, with BatchNorm ~ instance "
                                           "norm; 64 here for a CPU)")
    lr: float = param(2e-4, gt=0, help="Adam learning rate of G and D (Isola et al.)")
    betas: tuple[float, float] = param((0.5, 0.999), help="Adam betas (Isola et al.)")
    lambda_l1: float = param(100.0, ge=0, help="weight of the L1 term (Eq. 4; 0: the cGAN alone)")
    gan_weight: float = param(1.0, ge=0, help="weight of the cGAN term (0: L1 alone, the paper's ablation)")
    ngf: int = param(32, ge=1, help="U-Net width of its first layer (the reference's 64: at 32 px 16.7 M weights "
                                    "against 32's 4.2 M, too slow for a CPU budget)")
    ndf: int = param(32, ge=1, help="PatchGAN width of its first layer (the reference's 64; see ngf)")
    d_layers: int = param(0, ge=0, le=5, help="PatchGAN stride-2 layers (0: scaled to the image, 1 at 28-64 px; "
                                              "3: the paper's 70x70 receptive field)")
    norm: str = param("batch", choices=("batch", "instance"), help="normalisation in G and D (the reference: batch)")
    dropout: float = param(0.5, ge=0, lt=1, help="dropout in the first three decoder layers (the paper's noise)")
    lr_decay: str = param("half", choices=("none", "half", "linear"),
                          help="constant, constant then linear to 0 over the second half (the reference), or "
                               "linear to 0 throughout")
    val_fraction: float = param(0.1, gt=0, lt=1, help="part of train held out for every choice (validation)")
    max_train: int | None = param(None, ge=1, help="use only the first N training pairs (quick runs)")
    eval_samples: int = param(2048, ge=2, help="held-out pairs for the final metrics (FID from 2,048)")
    num_fixed: int = param(8, ge=1, help="held-out pairs in the translation grids")
    log_every: int = param(50, ge=1)
    image_every: int = param(500, ge=0)

    def check(self):
        require(all(0 <= b < 1 for b in self.betas), "betas", self.betas, "each beta must be in [0, 1)")
        require(self.lambda_l1 > 0 or self.gan_weight > 0, "lambda_l1", self.lambda_l1,
                "with gan_weight = 0 too, G has no loss")


@register_method
class Pix2Pix(Method):
    name = "pix2pix"
    summary = "Pix2Pix: U-Net G and PatchGAN D on paired images, cGAN + lambda L1"
    paper = "Isola et al. 2017, Image-to-Image Translation with Conditional Adversarial Networks"
    Config = Pix2PixConfig
    generative = True
    protocols = ("val", "test")
    trainable = ("G", "D")

    def __init__(self, cfg: Pix2PixConfig):
        super().__init__(cfg)
        full = load_dataset(cfg.dataset, "train", cfg.data_dir)
        if "target_image" not in full.fields:
            raise ConfigError(f"config key 'dataset' = {cfg.dataset!r} is invalid: pix2pix needs a paired dataset "
                              f"(fields image and target_image), e.g. {', '.join(TARGET_DOMAIN)}")
        self.train_set, self.val_set = full.train_val(cfg.val_fraction, VAL_SPLIT_SEED)
        if cfg.max_train:
            self.train_set = self.train_set.subset(range(min(cfg.max_train, len(self.train_set))))
        x, t = full.fields["image"], full.fields["target_image"]
        self.C_in, self.C_out, self.H = x.shape[1], t.shape[1], x.shape[-1]
        if cfg.d_layers and self.H >> cfg.d_layers < 3:
            raise ConfigError(f"config key 'd_layers' = {cfg.d_layers} is invalid: too deep for {self.H}-px images "
                              f"(side / 2^d_layers must stay >= 3)")
        self.G = nets.create("unet_generator", in_channels=self.C_in, out_channels=self.C_out, img_size=self.H,
                             ngf=cfg.ngf, norm=cfg.norm, dropout=cfg.dropout)
        self.D = nets.create("patch_discriminator", in_channels=self.C_in + self.C_out, ndf=cfg.ndf,
                             n_layers=cfg.d_layers or patch_layers(self.H), norm=cfg.norm)

    def configure_optimizers(self):
        c = self.cfg
        return {"D": torch.optim.Adam(self.D.parameters(), lr=c.lr, betas=c.betas),
                "G": torch.optim.Adam(self.G.parameters(), lr=c.lr, betas=c.betas)}

    def configure_schedulers(self):
        c = self.cfg
        if c.lr_decay == "none":
            return {}
        return linear_decay(self.optimizers, c.steps, start=c.steps // 2 if c.lr_decay == "half" else 0)

    def batches(self, rank, world):
        ds = self.train_set
        return ShuffledBatches({"x": ds.fields["image"], "t": ds.fields["target_image"]}, self.cfg.batch_size,
                               self.cfg.seed, rank, world)

    def pair(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 batch -> input x and target t in [-1, 1] (G's tanh range), on the device."""
        return self.prepare_images(batch["x"]) * 2 - 1, self.prepare_images(batch["t"]) * 2 - 1

    def discriminator_step(self, x, t):                  # x: (B, C_in, H, W), t: (B, C_out, H, W)
        fake = self.G(x)                                  # graph kept for the G step
        real_logits = self.D(torch.cat([x, t], 1))        # (B, 1, P, P): one logit per patch
        fake_logits = self.D(torch.cat([x, fake.detach()], 1))
        loss = 0.5 * discriminator_loss_minimax(real_logits, fake_logits)   # Sec. 3.3: D's objective halved
        self.optimize("D", loss)
        return loss, fake

    def generator_step(self, x, t, fake):
        c = self.cfg
        gan = generator_loss_nonsaturating(self.D(torch.cat([x, fake], 1)))  # -log D(x, G(x))
        l1 = F.l1_loss(fake, t)                                              # L_L1 (on [-1, 1])
        self.optimize("G", c.gan_weight * gan + c.lambda_l1 * l1)           # Eq. 4
        return gan, l1

    def training_step(self, batch, step):
        x, t = self.pair(batch)
        d_loss, fake = self.discriminator_step(x, t)
        g_gan, l1 = self.generator_step(x, t, fake)
        return {"loss_d": d_loss.item(), "loss_g_gan": g_gan.item(), "l1": l1.item()}

    # -- translation, pictures, evaluation ------------------------------------------------------------
    @torch.no_grad()
    def translate(self, x_uint8: torch.Tensor, chunk: int = 500) -> torch.Tensor:
        """uint8 inputs (N, C_in, H, W) -> translations (N, C_out, H, W) in [0, 1] on the CPU (G in eval mode)."""
        with eval_mode(self.G):
            return torch.cat([(self.G(self.prepare_images(x_uint8[i:i + chunk]) * 2 - 1).float().cpu() + 1) / 2
                              for i in range(0, len(x_uint8), chunk)])

    def _split(self, split: str):
        if split == "val":
            return self.val_set
        if split == "test":
            return load_dataset(self.cfg.dataset, "test", self.cfg.data_dir)
        raise ConfigError(f"split '{split}': expected val or test")

    def grid(self, split: str = "val", n: int | None = None) -> torch.Tensor:
        """Rows input | target | translation of the first n pairs of ``split``."""
        ds = self._split(split)
        n = min(n or self.cfg.num_fixed, len(ds))
        x, t = ds.fields["image"][:n], ds.fields["target_image"][:n]
        rgb = lambda a: a.repeat(1, 3 // a.shape[1], 1, 1) if a.shape[1] == 1 and self.C_out == 3 else a  # noqa: E731
        rows = [rgb(x.float() / 255), t.float() / 255, self.translate(x)]
        return labelled_rows(torch.cat(rows), n, ["input", "target", "pix2pix"])

    def images(self):
        return {"translations": self.grid()}

    def on_train_end(self, run_dir):
        return {"translations": str(save_image(self.grid(n=16), Path(run_dir) / "translations.png", scale=2))}

    def sample(self, n, seed=None, **kw):
        """Translations of the first n held-out inputs (Pix2Pix has no z: its only noise is dropout)."""
        return self.translate(self.val_set.fields["image"][:n])

    def evaluate(self, protocol=None) -> EvalResult:
        """Translations of the first ``eval_samples`` pairs of ``protocol`` (val: held out from train; test:
        reported only): L1 / PSNR / SSIM against the targets, the same for the input itself (the baseline of
        copying it), and the target domain's feature network: FID, KID, and its accuracy on translations and on
        the real targets."""
        from ..eval import translation as tr
        from ..eval.featurenet import load_featurenet
        split = protocol or "val"
        ds = self._split(split)
        n = min(self.cfg.eval_samples, len(ds))
        x, t, y = ds.fields["image"][:n], ds.fields["target_image"][:n], ds.labels[:n]
        fake, real = tr.quantise(self.translate(x)), t.float() / 255
        m = tr.pixel_metrics(fake, real)
        base = tr.pixel_metrics((x.float() / 255).expand(-1, self.C_out, -1, -1), real)
        m.update({f"copy_{k}": v for k, v in base.items()})
        domain = TARGET_DOMAIN.get(self.cfg.dataset)
        proto = {"split": split, "n": n, "generator": "G in eval mode (running BN statistics, no dropout)",
                 "pixels": "l1 on [0, 1]; psnr per image, averaged (data range 1); ssim 11x11 Gaussian, sigma 1.5",
                 "copy_": "the same metrics for the input copied to the target's channels (the do-nothing baseline)"}
        if domain:
            fn = load_featurenet(domain).to(self.device)
            m.update(tr.domain_metrics(fn, fake, real, labels=y, real_labels=y, seed=self.cfg.seed))
            proto.update({**fn.protocol(), "featurenet_domain": domain, "label_accuracy":
                          "the target domain's classifier reads the translation as the pair's class",
                          "real_accuracy": "the same classifier on the real targets (its ceiling)"})
        return EvalResult(m, proto)
