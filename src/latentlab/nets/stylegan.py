"""StyleGAN's generator and discriminator, pure PyTorch (no custom CUDA kernels), for 28-64 px.

Karras et al., "A Style-Based Generator Architecture for GANs", CVPR 2019, https://arxiv.org/abs/1812.04948
(StyleGAN), and "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020,
https://arxiv.org/abs/1912.04958 (StyleGAN2):

- mapping network f: z -> w, ``n_mlp`` equalised fully-connected layers (8 in the paper) with LeakyReLU 0.2
  after normalising z, at a 100x lower learning rate (``lr_mul=0.01``); ``n_mlp=0``: w = the normalised z;
- synthesis g: a learned constant 4x4 (7x7 at 28 px) input, two 3x3 convolutions per resolution (one at the
  first), each with its own style w_i and its own noise input scaled by a learned per-channel factor (zero at
  the start), and a tRGB per resolution reading the next convolution's style (StyleGAN2's indexing: ``num_ws``
  = convolutions + 1); ``style="adain"``: StyleGAN's AdaIN(x, y) = y_s (x - mu(x)) /
  sigma(x) + y_b after each convolution, the affine map A(w) -> (y_s, y_b); ``style="modulated"``: StyleGAN2's
  modulated convolution, weights scaled by s = A(w) per input channel and, with ``demodulate``, normalised to
  unit output norm; upsampling x2 (bilinear) before the first convolution of a resolution; tRGB outputs at every
  resolution summed after upsampling (StyleGAN2's skip generator, used for both styles here);
- equalised learning rate everywhere (weights N(0, 1) scaled by He's constant at run time);
- ``w_avg``: the running mean of w (decay 0.995), for the truncation trick w' = w_avg + psi (w - w_avg);
- the discriminator: equalised 3x3 convolutions and 2x average pooling per resolution (LeakyReLU 0.2), the
  minibatch standard deviation feature at 4x4, an equalised dense layer to one logit.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .dcgan import _START
from .registry import register

SQRT2 = math.sqrt(2)


class EqualLinear(nn.Module):
    """y = x (W c)^T + b lr_mul with W ~ N(0, 1) / lr_mul and c = lr_mul / sqrt(in) (equalised learning rate)."""

    def __init__(self, in_dim: int, out_dim: int, bias_init: float = 0.0, lr_mul: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)) / lr_mul)
        self.scale, self.lr_mul = lr_mul / math.sqrt(in_dim), lr_mul

    def forward(self, x):
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class EqualConv2d(nn.Module):
    def __init__(self, cin: int, cout: int, k: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.scale, self.pad = 1 / math.sqrt(cin * k * k), k // 2

    def forward(self, x):
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.pad)


class MappingNetwork(nn.Module):
    """z (B, z_dim) -> w (B, w_dim)."""

    def __init__(self, z_dim: int, w_dim: int, n_mlp: int, lr_mul: float = 0.01):
        super().__init__()
        if n_mlp == 0 and z_dim != w_dim:
            raise ValueError(f"n_mlp = 0 maps w = z: z_dim ({z_dim}) must equal w_dim ({w_dim})")
        dims = [z_dim] + [w_dim] * n_mlp
        self.layers = nn.ModuleList(EqualLinear(a, b, lr_mul=lr_mul) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, z):
        x = z * torch.rsqrt(z.pow(2).mean(1, keepdim=True) + 1e-8)     # pixel norm of z
        for layer in self.layers:
            x = F.leaky_relu(layer(x), 0.2) * SQRT2                      # gain sqrt(2) keeps unit variance
        return x


class ModulatedConv2d(nn.Module):
    """StyleGAN2's modulated convolution: w'_ijk = s_i w_ijk, then (``demodulate``) w''_ijk = w'_ijk /
    sqrt(sum_ik w'_ijk^2 + eps); one grouped convolution for the batch. x (B, cin, H, W), style (B, cin)."""

    def __init__(self, cin: int, cout: int, k: int, demodulate: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
        self.scale, self.pad, self.demodulate = 1 / math.sqrt(cin * k * k), k // 2, demodulate

    def forward(self, x, style):
        b, cin, h, w = x.shape
        wt = self.weight[None] * self.scale * style[:, None, :, None, None]   # (B, cout, cin, k, k)
        if self.demodulate:
            wt = wt * torch.rsqrt(wt.pow(2).sum((2, 3, 4), keepdim=True) + 1e-8)
        out = F.conv2d(x.reshape(1, b * cin, h, w), wt.reshape(-1, cin, *wt.shape[-2:]), padding=self.pad, groups=b)
        return out.reshape(b, -1, h, w)


class StyledLayer(nn.Module):
    """[up x2] -> conv styled by w -> + noise * strength -> + bias -> LeakyReLU (-> AdaIN for ``adain``)."""

    def __init__(self, cin: int, cout: int, w_dim: int, style: str, demodulate: bool, up: bool):
        super().__init__()
        self.style, self.up = style, up
        if style == "modulated":
            self.affine = EqualLinear(w_dim, cin, bias_init=1.0)            # s = A(w), starts at 1
            self.conv = ModulatedConv2d(cin, cout, 3, demodulate)
        else:
            self.affine = EqualLinear(w_dim, 2 * cout)                       # (y_s, y_b) = A(w)
            with torch.no_grad():
                self.affine.bias[:cout] = 1.0                                # y_s starts at 1
            self.conv = EqualConv2d(cin, cout, 3)
        self.noise_strength = nn.Parameter(torch.zeros(1, cout, 1, 1))     # the learned per-channel noise scale
        self.bias = nn.Parameter(torch.zeros(1, cout, 1, 1))

    def forward(self, x, w, noise=None):
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        if self.style == "modulated":
            x = self.conv(x, self.affine(w))
        else:
            x = self.conv(x) - self.conv.bias[None, :, None, None]          # its bias is added below
        if noise is None:
            noise = torch.randn(len(x), 1, *x.shape[-2:], device=x.device, dtype=x.dtype)
        x = F.leaky_relu(x + self.noise_strength * noise + self.bias, 0.2) * SQRT2
        if self.style == "adain":
            ys, yb = self.affine(w)[:, :, None, None].chunk(2, 1)
            x = ys * F.instance_norm(x, eps=1e-8) + yb
        return x


class ToRGB(nn.Module):
    """1x1 modulated convolution without demodulation (StyleGAN2's tRGB)."""

    def __init__(self, cin: int, channels: int, w_dim: int):
        super().__init__()
        self.affine = EqualLinear(w_dim, cin, bias_init=1.0)
        self.conv = ModulatedConv2d(cin, channels, 1, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x, w):
        return self.conv(x, self.affine(w)) + self.bias


class StyleGenerator(nn.Module):
    """z (B, z_dim) -> images (B, C, H, W): the summed tRGB outputs as they are, in about [-1, 1]
    (``output="linear"``, StyleGAN's), or squashed into (-1, 1) by a tanh (``output="tanh"``, DCGAN's)."""

    def __init__(self, img_size: int = 32, channels: int = 1, z_dim: int = 128, w_dim: int = 128, n_mlp: int = 8,
                 ngf: int = 32, style: str = "modulated", demodulate: bool = True, lr_mul: float = 0.01,
                 w_avg_beta: float = 0.995, output: str = "linear"):
        super().__init__()
        if img_size not in _START:
            raise ValueError(f"StyleGAN nets support img_size 28, 32 or 64, got {img_size}")
        if style not in ("adain", "modulated"):
            raise ValueError(f"style must be adain or modulated, got {style!r}")
        if output not in ("linear", "tanh"):
            raise ValueError(f"output must be linear or tanh, got {output!r}")
        self.output = output
        s0 = _START[img_size]
        n_up = int(math.log2(img_size // s0))
        ch = [min(ngf * 2 ** (n_up - i), ngf * 8) for i in range(n_up + 1)]   # channels per resolution
        self.z_dim, self.w_dim, self.img_size, self.channels, self.w_avg_beta = z_dim, w_dim, img_size, channels, w_avg_beta
        self.mapping = MappingNetwork(z_dim, w_dim, n_mlp, lr_mul)
        self.const = nn.Parameter(torch.randn(1, ch[0], s0, s0))             # the learned constant input
        self.layers = nn.ModuleList([StyledLayer(ch[0], ch[0], w_dim, style, demodulate, up=False)])
        self.to_rgb = nn.ModuleList([ToRGB(ch[0], channels, w_dim)])
        for i in range(1, n_up + 1):
            self.layers.append(StyledLayer(ch[i - 1], ch[i], w_dim, style, demodulate, up=True))
            self.layers.append(StyledLayer(ch[i], ch[i], w_dim, style, demodulate, up=False))
            self.to_rgb.append(ToRGB(ch[i], channels, w_dim))
        self.num_ws = len(self.layers) + 1                 # a style per convolution, and the last tRGB's (StyleGAN2:
        # each tRGB reads the style of the next resolution's first convolution)
        self.resolutions = [s0 * 2 ** i for i in range(n_up + 1)]
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def style_resolutions(self) -> list[int]:
        """The resolution each style index acts at (the last: the final tRGB)."""
        return [self.resolutions[0]] + [r for r in self.resolutions[1:] for _ in range(2)] + [self.resolutions[-1]]

    def noise_shapes(self) -> list[tuple[int, int]]:
        """The (H, W) of each layer's noise input."""
        return [(r, r) for r in [self.resolutions[0]] + [r for r in self.resolutions[1:] for _ in range(2)]]

    def map(self, z: torch.Tensor, psi: float = 1.0, track: bool = False) -> torch.Tensor:
        """w = f(z), truncated towards w_avg by ``psi`` (1: none); ``track``: update w_avg (training)."""
        w = self.mapping(z)
        if track:
            with torch.no_grad():
                self.w_avg.copy_(w.detach().mean(0).to(self.w_avg.dtype).lerp(self.w_avg, self.w_avg_beta))
        return w if psi == 1 else self.w_avg.to(w.dtype).lerp(w, psi)

    def synthesis(self, ws: torch.Tensor, noise: list[torch.Tensor] | None = None) -> torch.Tensor:
        """ws (B, num_ws, w_dim): one style per layer; noise: one (B, 1, H, W) tensor per layer or None."""
        if ws.shape[1] != self.num_ws:
            raise ValueError(f"ws has {ws.shape[1]} styles, the synthesis network takes {self.num_ws}")
        x = self.const.expand(len(ws), -1, -1, -1)
        x = self.layers[0](x, ws[:, 0], None if noise is None else noise[0])
        rgb = self.to_rgb[0](x, ws[:, 1])                 # tRGB at resolution r reads style 2r + 1
        for r in range(1, len(self.resolutions)):
            for j in (2 * r - 1, 2 * r):
                x = self.layers[j](x, ws[:, j], None if noise is None else noise[j])
            rgb = F.interpolate(rgb, scale_factor=2, mode="bilinear", align_corners=False) + self.to_rgb[r](x, ws[:, 2 * r + 1])
        return torch.tanh(rgb) if self.output == "tanh" else rgb

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None, psi: float = 1.0,
                z_mix: torch.Tensor | None = None, crossover: int | torch.Tensor | None = None,
                track: bool = False) -> torch.Tensor:
        """G(z): every layer styled by w(z); with ``z_mix`` and ``crossover`` (style mixing) the layers from
        ``crossover`` on by w(z_mix). ``track``: update w_avg (training). ``y`` is unused (unconditional)."""
        w = self.map(z, psi, track)
        ws = w[:, None].expand(-1, self.num_ws, -1)
        if z_mix is not None:
            ws = mix_styles(w, self.map(z_mix, psi), crossover, self.num_ws)
        return self.synthesis(ws)


def mix_styles(w1: torch.Tensor, w2: torch.Tensor, crossover: torch.Tensor | int, num_ws: int) -> torch.Tensor:
    """Style mixing: ws (B, num_ws, w_dim) with w1 before layer ``crossover`` (per sample or one int) and w2 from it
    on; w1 is (B, w_dim) or already per layer (B, num_ws, w_dim: a further crossover), w2 is (B, w_dim)."""
    layer = torch.arange(num_ws, device=w1.device)[None, :, None]                          # (1, L, 1)
    cut = torch.as_tensor(crossover, device=w1.device).reshape(-1, 1, 1)                   # (B or 1, 1, 1)
    return torch.where(layer < cut, w1 if w1.ndim == 3 else w1[:, None], w2[:, None])


class StyleDiscriminator(nn.Module):
    """x (B, C, H, W) -> logit (B,): per resolution two 3x3 equalised convolutions then 2x average pooling
    down to 4x4 (28 px: 7x7), the minibatch standard deviation as one more channel, a dense layer."""

    def __init__(self, img_size: int = 32, channels: int = 1, ndf: int = 32, mbstd_group: int = 4):
        super().__init__()
        s0 = _START[img_size]
        n = int(math.log2(img_size // s0))
        ch = [min(ndf * 2 ** i, ndf * 8) for i in range(n + 1)]
        self.from_rgb = EqualConv2d(channels, ch[0], 1)
        self.blocks = nn.ModuleList(nn.ModuleList([EqualConv2d(ch[i], ch[i], 3), EqualConv2d(ch[i], ch[i + 1], 3)])
                                    for i in range(n))
        self.final_conv = EqualConv2d(ch[n] + 1, ch[n], 3)
        self.dense = EqualLinear(ch[n] * s0 * s0, ch[n])
        self.out = EqualLinear(ch[n], 1)
        self.mbstd_group = mbstd_group

    def minibatch_stddev(self, x):
        b, c, h, w = x.shape
        g = min(self.mbstd_group, b)
        while b % g:
            g -= 1
        s = (x.reshape(g, -1, c, h, w).var(0, unbiased=False) + 1e-8).sqrt().mean((1, 2, 3))   # (B / g,); eps: an
        # all-background corner of MNIST is the same in every image (std 0, whose gradient is NaN)
        return torch.cat([x, s.repeat(g)[:, None, None, None].expand(-1, 1, h, w)], 1)

    def forward(self, x, y=None):
        h = F.leaky_relu(self.from_rgb(x), 0.2) * SQRT2
        for c1, c2 in self.blocks:
            h = F.leaky_relu(c1(h), 0.2) * SQRT2
            h = F.avg_pool2d(F.leaky_relu(c2(h), 0.2) * SQRT2, 2)
        h = F.leaky_relu(self.final_conv(self.minibatch_stddev(h)), 0.2) * SQRT2
        return self.out(F.leaky_relu(self.dense(h.flatten(1)), 0.2) * SQRT2).squeeze(1)


@register("stylegan_generator", kind="generator",
          example=lambda: (dict(img_size=28, channels=1, z_dim=8, w_dim=8, n_mlp=2, ngf=4), (torch.randn(2, 8),)))
def stylegan_generator(**kw) -> StyleGenerator:
    return StyleGenerator(**kw)


@register("stylegan_discriminator", kind="discriminator",
          example=lambda: (dict(img_size=32, channels=3, ndf=4), (torch.randn(4, 3, 32, 32),)))
def stylegan_discriminator(**kw) -> StyleDiscriminator:
    return StyleDiscriminator(**kw)
