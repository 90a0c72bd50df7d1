"""Denoising autoencoder: reconstruct the clean image from a corrupted one through the encoder's features.

Vincent et al., "Extracting and composing robust features with denoising autoencoders", ICML 2008: masking noise
(a fraction ``noise`` of the pixels set to 0), the encoder maps the corrupted image to its features, a decoder maps
them back, and the loss is the cross-entropy of the reconstruction against the clean image (pixels in [0, 1]).
``noise=0`` is the plain autoencoder. The pretext baseline the learning-by-moving comparison asks for (Agrawal et
al. 2015 compare egomotion features with autoencoder-style ones); the decoder is a two-layer MLP, the encoder the
same backbone every self-supervised method trains.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import param
from ..data import augment as aug
from ..engine.method import register_method
from ._ssl import SSLConfig, SSLMethod


@dataclass
class AutoencoderConfig(SSLConfig):
    augment: str = param("none", choices=aug.PIPELINES, help="views before corruption (none: the image itself)")
    noise: float = param(0.25, ge=0, lt=1, help="masking-noise fraction (Vincent et al. use 0.1-0.4; 0: plain AE)")
    decoder_hidden: int = param(512, ge=1, help="hidden units of the MLP decoder")


@register_method
class Autoencoder(SSLMethod):
    name = "autoencoder"
    summary = "Pretext task: reconstruct the clean image from a masked one (denoising autoencoder)"
    paper = "Vincent et al. 2008, Extracting and composing robust features with denoising autoencoders"
    Config = AutoencoderConfig
    trainable = ("backbone", "decoder")

    def __init__(self, cfg: AutoencoderConfig):
        super().__init__(cfg)
        c, h, w = self.img_shape
        self.decoder = nn.Sequential(nn.Linear(self.feat_dim, cfg.decoder_hidden), nn.ReLU(inplace=True),
                                     nn.Linear(cfg.decoder_hidden, c * h * w))

    def training_step(self, batch, step):
        (x,) = self.views(batch["x"], self.view)                                 # (B, C, H, W) in [0, 1]
        keep = (torch.rand(x.shape, device=x.device) >= self.cfg.noise).to(x.dtype)
        logits = self.decoder(self.backbone(x * keep)).view_as(x)                # (B, C, H, W)
        loss = F.binary_cross_entropy_with_logits(logits, x)
        self.optimize("model", loss)
        return {"loss": loss.item(), "mse": F.mse_loss(logits.sigmoid(), x).item()}

    def images(self):
        x = self.prepare_images(self.train_set.images[:8])
        with torch.no_grad():
            rec = self.decoder(self.backbone(x)).view_as(x).sigmoid()
        return {"reconstructions": torch.cat([x, rec]).float().cpu()}
