"""A small U-Net with a time embedding: the denoiser eps_theta(x_t, t) of the diffusion model.

The layout of Ho et al.'s DDPM network (https://arxiv.org/abs/2006.11239, appendix B; PixelCNN++-style
U-Net): a sinusoidal embedding of t through a 2-layer MLP, wide residual blocks (GroupNorm, SiLU, 3x3 conv,
the time embedding added between the two convolutions, dropout), ``blocks`` of them per resolution with
skip connections from the down path to the up path, strided-conv downsampling and nearest-neighbour
upsampling. Ho et al.'s CIFAR-10 network has 128 base channels, multipliers (1, 2, 2, 2), 2 blocks and
self-attention at 16x16 (35.7 M weights); the default here, for 28-32 px on a CPU, is 32 channels, (1, 2, 2)
(28 -> 14 -> 7), 1 block, no attention, about 0.6 M weights. Written here, not taken from diffusers: diffusers is
not a dependency of the project, and the network is short.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .registry import register


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of integer timesteps (B,) -> (B, dim) (the Transformer's, as in DDPM)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, device=t.device, dtype=torch.float32) / (half - 1))
    args = t.float()[:, None] * freqs[None]
    return torch.cat([args.sin(), args.cos()], 1)


def _norm(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, c), c)


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, t_dim: int, dropout: float, zero_init: bool = True):
        super().__init__()
        self.norm1, self.conv1 = _norm(c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.temb = nn.Linear(t_dim, c_out)
        self.norm2, self.drop = _norm(c_out), nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        if zero_init:                                        # each block starts as its skip path (Ho et al.)
            nn.init.zeros_(self.conv2.weight)
            nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x, temb):                              # x (B, C, H, W), temb (B, T)
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb(F.silu(temb))[:, :, None, None]
        h = self.conv2(self.drop(F.silu(self.norm2(h))))
        return self.skip(x) + h


class UNet(nn.Module):
    """eps_theta(x (B, C, H, W), t (B,) integer timesteps) -> (B, C, H, W)."""

    def __init__(self, channels: int = 1, base: int = 32, mults: tuple[int, ...] = (1, 2, 2), blocks: int = 1,
                 dropout: float = 0.1, zero_init: bool = True):
        super().__init__()
        block = lambda a, b: ResBlock(a, b, 4 * base, dropout, zero_init)   # noqa: E731
        self.base, t_dim = base, 4 * base
        self.temb = nn.Sequential(nn.Linear(base, t_dim), nn.SiLU(), nn.Linear(t_dim, t_dim))
        self.stem = nn.Conv2d(channels, base, 3, padding=1)
        self.down, skips, c = nn.ModuleList(), [base], base
        for i, m in enumerate(mults):
            for _ in range(blocks):
                self.down.append(block(c, base * m))
                c = base * m
                skips.append(c)
            if i < len(mults) - 1:
                self.down.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
                skips.append(c)
        self.mid = nn.ModuleList([block(c, c), block(c, c)])
        self.up = nn.ModuleList()
        for i, m in reversed(list(enumerate(mults))):
            for _ in range(blocks + 1):
                self.up.append(block(c + skips.pop(), base * m))
                c = base * m
            if i > 0:
                self.up.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, c, 3, padding=1)))
        self.out = nn.Sequential(_norm(c), nn.SiLU(), nn.Conv2d(c, channels, 3, padding=1))
        if zero_init:                                        # the network starts by predicting eps = 0
            nn.init.zeros_(self.out[-1].weight)
            nn.init.zeros_(self.out[-1].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        temb = self.temb(timestep_embedding(t, self.base).to(x.dtype))
        h = self.stem(x)
        hs = [h]
        for layer in self.down:
            h = layer(h, temb) if isinstance(layer, ResBlock) else layer(h)
            hs.append(h)
        for layer in self.mid:
            h = layer(h, temb)
        for layer in self.up:
            if isinstance(layer, ResBlock):
                skip = hs.pop()
                if skip.shape[-2:] != h.shape[-2:]:               # odd sizes (7 -> 14 is exact; 8 px tests)
                    h = F.interpolate(h, size=skip.shape[-2:], mode="nearest")
                h = layer(torch.cat([h, skip], 1), temb)
            else:
                h = layer(h)
        return self.out(h)


@register("unet", kind="denoiser", example=lambda: (dict(channels=1, base=8, mults=(1, 2), blocks=1, zero_init=False),
                                                     (torch.randn(3, 1, 8, 8), torch.tensor([0, 5, 9]))))
def unet(channels: int = 1, base: int = 32, mults: tuple[int, ...] = (1, 2, 2), blocks: int = 1,
         dropout: float = 0.1, zero_init: bool = True) -> UNet:
    """``zero_init``: the last conv of each block and the output conv start at zero (Ho et al.'s init_scale 0)."""
    return UNet(channels, base, tuple(mults), blocks, dropout, zero_init)
