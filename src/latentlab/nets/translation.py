"""Image-to-image networks: Pix2Pix's U-Net generator and the PatchGAN discriminator (Pix2Pix, CycleGAN).

Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks", CVPR 2017,
https://arxiv.org/abs/1611.07004, Sec. 3.2 and appendix 6.1.1:

- U-Net generator: an encoder of Ck blocks (4x4 convolution, stride 2, BatchNorm, LeakyReLU 0.2; no norm on
  the first), one per halving down to 1x1, and a mirrored decoder (4x4 transposed convolution, stride 2,
  BatchNorm, ReLU; dropout 0.5 in the first three, the paper's only noise), with a skip connection from each
  encoder layer i to decoder layer n - i (concatenated channels); tanh output. Widths ngf x (1, 2, 4, 8, 8, ...).
  At 256 px that is 8 halvings (``unet_256``); here ``depth`` = log2 of the padded image size: 5 at 32 px, 6 at 64.
  A 28-px image is padded to 32 with -1 (the background in [-1, 1]; the encoder needs a power of two) and the
  output cropped back.
- PatchGAN discriminator: C64-C128-C256 (stride 2), C512 (stride 1), a 4x4 convolution to one logit per patch;
  ``n_layers`` stride-2 layers give a receptive field of 16 (1), 34 (2), 70 (3: the paper's 70x70 at 256 px).
  ``patch_layers(size)`` scales it: the receptive field nearest (in log scale) to 70/256 of the image.

CycleGAN (Zhu et al., ICCV 2017, https://arxiv.org/abs/1703.10593, appendix 7.2) uses a ResNet generator after
Johnson et al. 2016: c7s1-64, d128, d256, ``n_blocks`` residual blocks R256 (6 at 128 px, 9 at 256), u128, u64,
c7s1-3 (reflection padding, InstanceNorm, ReLU, tanh output), and the same PatchGAN with InstanceNorm;
``pool_query`` keeps its history of 50 generated images (Shrivastava et al. 2017) that D is updated on.

Initialisation N(0, 0.02) as the authors' code (``dcgan_init``). ``norm="instance"`` gives CycleGAN's choice.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .dcgan import dcgan_init
from .registry import register


def _norm(kind: str, ch: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(ch)
    if kind == "instance":                  # CycleGAN: InstanceNorm without learned affine or running stats
        return nn.InstanceNorm2d(ch)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be batch, instance or none, got {kind!r}")


def padded_size(img_size: int) -> int:
    """The power of two >= img_size the U-Net runs at (28 -> 32)."""
    if img_size < 8:
        raise ValueError(f"U-Net needs images of at least 8 px, got {img_size}")
    return 1 << math.ceil(math.log2(img_size))


class UNetGenerator(nn.Module):
    """x (B, in_ch, S, S) in [-1, 1] -> (B, out_ch, S, S) in [-1, 1]."""

    def __init__(self, in_channels: int, out_channels: int, img_size: int, ngf: int = 64, norm: str = "batch",
                 dropout: float = 0.5):
        super().__init__()
        self.img_size, self.size = img_size, padded_size(img_size)
        self.depth = int(math.log2(self.size))                               # halvings down to 1x1
        widths = [ngf * min(2 ** i, 8) for i in range(self.depth)]            # encoder outputs
        self.down = nn.ModuleList()
        for i, w in enumerate(widths):
            cin = in_channels if i == 0 else widths[i - 1]
            layers = [] if i == 0 else [nn.LeakyReLU(0.2)]                    # activation precedes the conv
            layers.append(nn.Conv2d(cin, w, 4, 2, 1, bias=norm != "batch"))     # as the reference: no bias with BN
            if 0 < i < self.depth - 1:                                        # no norm at 1x1 (innermost)
                layers.append(_norm(norm, w))
            self.down.append(nn.Sequential(*layers))
        self.up = nn.ModuleList()
        for j in range(self.depth):                                           # j = 0: innermost
            i = self.depth - 1 - j                                            # mirrors encoder layer i
            cin = widths[i] if j == 0 else 2 * widths[i]                      # skip concatenated after j = 0
            cout = out_channels if i == 0 else widths[i - 1]
            layers = [nn.ReLU(), nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=i == 0 or norm != "batch")]
            if i == 0:
                layers.append(nn.Tanh())
            else:
                layers.append(_norm(norm, cout))
                if j < 3 and dropout > 0:                                     # the paper's noise: dropout 0.5
                    layers.append(nn.Dropout(dropout))
            self.up.append(nn.Sequential(*layers))
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = self.size - x.shape[-1]
        if pad:
            x = F.pad(x, (pad // 2, pad - pad // 2, pad // 2, pad - pad // 2), value=-1.0)   # -1: background
        skips = []
        for d in self.down:
            x = d(x)
            skips.append(x)                                                   # (B, w_i, S / 2^(i+1), ...)
        h = skips.pop()                                                       # (B, w, 1, 1)
        for j, u in enumerate(self.up):
            h = u(h if j == 0 else torch.cat([h, skips.pop()], 1))
        if pad:
            h = h[..., pad // 2: pad // 2 + self.img_size, pad // 2: pad // 2 + self.img_size]
        return h


def receptive_field(n_layers: int) -> int:
    """Receptive field in pixels of one PatchGAN output: 16, 34, 70, 142 for n_layers 1-4."""
    r = 4 + 3                                           # the last two stride-1 4x4 convolutions
    for _ in range(n_layers):
        r = (r - 1) * 2 + 4
    return r


def patch_layers(img_size: int) -> int:
    """The PatchGAN depth for ``img_size``: receptive field nearest in log scale to 70/256 of the image
    (the paper's 70x70 on 256 px): 3 at 256, 1 at 28-64."""
    goal = 70 / 256 * img_size
    return min(range(1, 6), key=lambda n: abs(math.log(receptive_field(n) / goal)))


class PatchDiscriminator(nn.Module):
    """x (B, C, H, W) -> patch logits (B, 1, H', W') (no sigmoid: the losses take logits)."""

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 3, norm: str = "batch"):
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2)]   # C64, no norm
        ch = ndf
        for i in range(1, n_layers + 1):                 # n_layers - 1 more stride-2 layers, then one stride 1
            nxt = ndf * min(2 ** i, 8)
            stride = 2 if i < n_layers else 1
            layers += [nn.Conv2d(ch, nxt, 4, stride, 1, bias=norm != "batch"), _norm(norm, nxt), nn.LeakyReLU(0.2)]
            ch = nxt
        layers.append(nn.Conv2d(ch, 1, 4, 1, 1))         # one logit per patch
        self.net = nn.Sequential(*layers)
        self.n_layers = n_layers
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ResnetBlock(nn.Module):
    """x + [reflect-pad, conv 3x3, norm, ReLU, reflect-pad, conv 3x3, norm](x)."""

    def __init__(self, ch: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3, bias=norm != "batch"), _norm(norm, ch),
                                  nn.ReLU(), nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3, bias=norm != "batch"),
                                  _norm(norm, ch))

    def forward(self, x):
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """x (B, in_ch, H, W) in [-1, 1] -> (B, out_ch, H, W) in [-1, 1]; H divisible by 4 (28, 32, 64)."""

    def __init__(self, in_channels: int, out_channels: int, ngf: int = 64, n_blocks: int = 6, norm: str = "instance"):
        super().__init__()
        b = norm != "batch"
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7, bias=b), _norm(norm, ngf),
                                   nn.ReLU()]                                         # c7s1-64
        for m in (1, 2):                                                              # d128, d256
            layers += [nn.Conv2d(ngf * m, ngf * m * 2, 3, 2, 1, bias=b), _norm(norm, ngf * m * 2), nn.ReLU()]
        layers += [ResnetBlock(ngf * 4, norm) for _ in range(n_blocks)]               # R256 x n_blocks
        for m in (4, 2):                                                              # u128, u64
            layers += [nn.ConvTranspose2d(ngf * m, ngf * m // 2, 3, 2, 1, output_padding=1, bias=b),
                       _norm(norm, ngf * m // 2), nn.ReLU()]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh()]  # c7s1-3
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 4 or x.shape[-2] % 4:
            raise ValueError(f"ResNet generator needs sides divisible by 4, got {tuple(x.shape[-2:])}")
        return self.net(x)


@torch.no_grad()
def pool_query(pool: torch.Tensor, count: torch.Tensor, fakes: torch.Tensor) -> torch.Tensor:
    """CycleGAN's history of generated images (Shrivastava et al. 2017; Zhu et al. Sec. 4): D is updated on what
    this returns. ``pool`` (size, C, H, W) and ``count`` (a 0-d long tensor: images stored) are updated in place.
    Until the pool is full each fake is stored and returned; then each is, with probability 1/2, swapped for a
    random stored one (the stored one returned, the new one kept in its place), else returned as is. Draws come
    from torch's global generator (checkpointed by the engine); the method keeps ``pool`` and ``count`` in its
    checkpointed state, so resume is exact."""
    size = len(pool)
    if size == 0:
        return fakes.detach()
    out = []
    for f in fakes.detach():
        n = int(count)
        if n < size:
            pool[n] = f.to(pool.dtype)
            count += 1
            out.append(f)
        elif float(torch.rand(())) < 0.5:
            i = int(torch.randint(size, ()))
            out.append(pool[i].clone().to(f.dtype))
            pool[i] = f.to(pool.dtype)
        else:
            out.append(f)
    return torch.stack(out)


@register("resnet_generator", kind="generator",
          example=lambda: (dict(in_channels=3, out_channels=1, ngf=4, n_blocks=2), (torch.randn(2, 3, 28, 28),)))
def resnet_generator(**kw) -> ResnetGenerator:
    return ResnetGenerator(**kw)


@register("unet_generator", kind="generator",
          example=lambda: (dict(in_channels=1, out_channels=3, img_size=28, ngf=4), (torch.randn(2, 1, 28, 28),)))
def unet_generator(**kw) -> UNetGenerator:
    return UNetGenerator(**kw)


@register("patch_discriminator", kind="discriminator",
          example=lambda: (dict(in_channels=4, ndf=4, n_layers=1), (torch.randn(2, 4, 32, 32),)))
def patch_discriminator(**kw) -> PatchDiscriminator:
    return PatchDiscriminator(**kw)
