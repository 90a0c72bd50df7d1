"""DCGAN generator and discriminator, with conditional variants (cGAN concat / projection, ACGAN head).

Radford et al., "Unsupervised Representation Learning with Deep Convolutional GANs", ICLR 2016, Sec. 3:
strided convolutions in D, transposed convolutions in G; BatchNorm everywhere except G's output layer
and D's input layer; ReLU in G with a tanh output; LeakyReLU(0.2) in D. Sizes 28 (7x7 start), 32 and 64
(4x4 start); 1 or 3 channels. Initialisation as Sec. 4: every convolution and linear weight from
N(0, 0.02), BatchNorm scales from N(1, 0.02), biases 0 (``dcgan_init``; label embeddings keep PyTorch's).

Conditioning: G concatenates a label embedding to z (Mirza & Osindero 2014). D either concatenates
one-hot label maps to its input (Mirza & Osindero) or adds the projection <embed(y), phi(x)>
(Miyato & Koyama, "cGANs with Projection Discriminator", ICLR 2018). With ``aux_classes`` D also has
the ACGAN class head (Odena et al. 2017) and returns (B, 1 + K) logits: column 0 real/fake, the rest
class logits (no softmax: the loss takes logits).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .registry import register

_START = {28: 7, 32: 4, 64: 4}


def _stages(img_size: int) -> tuple[int, int]:
    """(start spatial size, number of x2 stages) for a supported image size."""
    if img_size not in _START:
        raise ValueError(f"DCGAN nets support img_size 28, 32 or 64, got {img_size}")
    s0 = _START[img_size]
    return s0, int(math.log2(img_size // s0))


def _norm(kind: str, ch: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(ch)
    if kind == "layer":                     # WGAN-GP's suggestion: per-sample normalisation in the critic
        return nn.GroupNorm(1, ch)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be batch, layer or none, got {kind!r}")


def dcgan_init(module: nn.Module, std: float = 0.02) -> nn.Module:
    """Radford et al. 2016, Sec. 4: "All weights were initialized from a zero-centered Normal distribution
    with standard deviation 0.02"; BatchNorm scales N(1, 0.02) and zero shifts, as in the authors' code."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
    return module


class DCGANGenerator(nn.Module):
    def __init__(self, z_dim: int = 100, img_size: int = 28, channels: int = 1, ngf: int = 64,
                 num_classes: int = 0, embed_dim: int = 10):
        super().__init__()
        s0, n = _stages(img_size)
        self.z_dim, self.img_size, self.channels, self.num_classes = z_dim, img_size, channels, num_classes
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes else None
        in_dim = z_dim + (embed_dim if num_classes else 0)
        ch = ngf * 2 ** (n - 1)
        layers: list[nn.Module] = [nn.ConvTranspose2d(in_dim, ch, s0, 1, 0, bias=False),   # (B, ch, s0, s0)
                                   nn.BatchNorm2d(ch), nn.ReLU(True)]
        for _ in range(n - 1):                                                            # x2 each
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1), nn.Tanh()]                  # (B, C, H, W), no BN
        self.net = dcgan_init(nn.Sequential(*layers))

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            if y is None:
                raise ValueError("conditional generator needs labels y")
            z = torch.cat([z, self.embed(y)], 1)                      # (B, z + e)
        return self.net(z[:, :, None, None])                          # (B, C, H, W) in [-1, 1]


class DCGANDiscriminator(nn.Module):
    def __init__(self, img_size: int = 28, channels: int = 1, ndf: int = 64, norm: str = "batch",
                 num_classes: int = 0, condition: str = "concat", aux_classes: int = 0):
        super().__init__()
        s0, n = _stages(img_size)
        if condition not in ("concat", "projection"):
            raise ValueError(f"condition must be concat or projection, got {condition!r}")
        self.num_classes, self.condition, self.aux_classes = num_classes, condition, aux_classes
        in_ch = channels + (num_classes if num_classes and condition == "concat" else 0)
        layers: list[nn.Module] = [nn.Conv2d(in_ch, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]  # no norm on input layer
        ch = ndf
        for _ in range(n - 1):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=norm == "none"), _norm(norm, ch * 2),
                       nn.LeakyReLU(0.2, True)]
            ch *= 2
        self.features = nn.Sequential(*layers)                        # (B, ch, s0, s0)
        self.num_features = ch * s0 * s0
        self.out = nn.Linear(self.num_features, 1)                    # = a (s0 x s0) conv to one logit
        self.proj = nn.Embedding(num_classes, self.num_features) if num_classes and condition == "projection" else None
        self.aux = nn.Linear(self.num_features, aux_classes) if aux_classes else None
        dcgan_init(self.features), dcgan_init(self.out)
        if self.aux is not None:
            dcgan_init(self.aux)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes and y is None:
            raise ValueError("conditional discriminator needs labels y")
        if self.num_classes and self.condition == "concat":
            maps = F.one_hot(y, self.num_classes).to(x.dtype)[:, :, None, None].expand(-1, -1, *x.shape[2:])
            x = torch.cat([x, maps], 1)                               # (B, C + K, H, W)
        h = self.features(x).flatten(1)                               # (B, F)
        logit = self.out(h).squeeze(1)                                # (B,)
        if self.proj is not None:
            logit = logit + (self.proj(y) * h).sum(1)                 # projection term <embed(y), phi(x)>
        if self.aux is not None:
            return torch.cat([logit[:, None], self.aux(h)], 1)        # (B, 1 + K): source, class logits
        return logit


@register("dcgan_generator", kind="generator",
          example=lambda: (dict(z_dim=8, img_size=28, channels=1, ngf=8), (torch.rand(2, 8) * 2 - 1,)))
def dcgan_generator(**kw) -> DCGANGenerator:
    return DCGANGenerator(**kw)


@register("dcgan_discriminator", kind="discriminator",
          example=lambda: (dict(img_size=32, channels=3, ndf=8), (torch.randn(2, 3, 32, 32),)))
def dcgan_discriminator(**kw) -> DCGANDiscriminator:
    return DCGANDiscriminator(**kw)


@register("cdcgan_generator", kind="generator",
          example=lambda: (dict(z_dim=8, img_size=32, channels=3, ngf=8, num_classes=3),
                           (torch.rand(2, 8), torch.tensor([0, 2]))))
def cdcgan_generator(**kw) -> DCGANGenerator:
    """The DCGAN generator with a label embedding (``num_classes`` > 0)."""
    return DCGANGenerator(**kw)


@register("cdcgan_discriminator", kind="discriminator",
          example=lambda: (dict(img_size=28, channels=1, ndf=8, num_classes=3, condition="projection"),
                           (torch.randn(2, 1, 28, 28), torch.tensor([1, 2]))))
def cdcgan_discriminator(**kw) -> DCGANDiscriminator:
    """The DCGAN discriminator conditioned by concatenation or projection (``num_classes`` > 0)."""
    return DCGANDiscriminator(**kw)


@register("acgan_discriminator", kind="discriminator",
          example=lambda: (dict(img_size=64, channels=1, ndf=4, aux_classes=5), (torch.randn(2, 1, 64, 64),)))
def acgan_discriminator(**kw) -> DCGANDiscriminator:
    """The DCGAN discriminator with the auxiliary classifier head: (B, 1 + K) logits."""
    return DCGANDiscriminator(**kw)
