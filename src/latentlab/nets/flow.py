"""A Glow-style multi-scale normalizing flow: actnorm, invertible 1x1 convolution, affine coupling, squeeze
and split (Dinh et al., "Density estimation using Real NVP", ICLR 2017, https://arxiv.org/abs/1605.08803;
Kingma & Dhariwal, "Glow", NeurIPS 2018, https://arxiv.org/abs/1807.03039).

Written here rather than taken from zuko or normflows: zuko's flows are for vectors (no multi-scale
convolutional coupling), normflows is not a kept dependency, and the four layers below are short enough to read
beside the papers. Each layer maps ``x -> (y, logdet)`` with ``logdet = log |det dy/dx|`` per example and has an
exact ``inverse``; ``Glow.forward(x) -> (eps, log p(x))`` where ``eps`` is the standardised latent (N(0, I)
under the model) and ``Glow.inverse(eps, temperature)`` samples.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .registry import register

LOG2PI = math.log(2 * math.pi)


def squeeze(x: torch.Tensor) -> torch.Tensor:            # (B, C, H, W) -> (B, 4C, H/2, W/2)
    b, c, h, w = x.shape
    x = x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(b, 4 * c, h // 2, w // 2)


def unsqueeze(x: torch.Tensor) -> torch.Tensor:          # (B, 4C, H/2, W/2) -> (B, C, H, W)
    b, c, h, w = x.shape
    x = x.view(b, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(b, c // 4, 2 * h, 2 * w)


class ActNorm(nn.Module):
    """y = (x + b) * exp(s) per channel; b, s initialised from the first batch to zero mean, unit variance (Glow)."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.logs = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.register_buffer("initialized", torch.tensor(False))

    @torch.no_grad()
    def _init(self, x):
        self.bias.copy_(-x.mean((0, 2, 3), keepdim=True))
        self.logs.copy_(-x.std((0, 2, 3), keepdim=True).clamp_min(1e-6).log())
        self.initialized.fill_(True)

    def forward(self, x):
        if not bool(self.initialized) and self.training:
            self._init(x)
        return (x + self.bias) * self.logs.exp(), self.logs.sum().expand(len(x)) * x.shape[2] * x.shape[3]

    def inverse(self, y):
        return y * (-self.logs).exp() - self.bias


class InvConv1x1(nn.Module):
    """y = W x at every pixel, W initialised to a random rotation; logdet = H W log |det W| (Glow, without the
    LU parameterisation: at 4-16 channels the determinant is cheap)."""

    def __init__(self, channels: int):
        super().__init__()
        w = torch.linalg.qr(torch.randn(channels, channels))[0]
        self.weight = nn.Parameter(w)

    def forward(self, x):
        logdet = torch.linalg.slogdet(self.weight.double())[1].to(x.dtype) * x.shape[2] * x.shape[3]
        return torch.einsum("ij,bjhw->bihw", self.weight, x), logdet.expand(len(x))

    def inverse(self, y):
        return torch.einsum("ij,bjhw->bihw", torch.linalg.inv(self.weight.double()).to(y.dtype), y)


class AffineCoupling(nn.Module):
    """x = (x_a, x_b) by channels; (t, s) = NN(x_a); y_b = (x_b + t) * sigmoid(s + 2), y_a = x_a (Glow's coupling,
    the sigmoid scale keeps it stable). NN: 3x3 conv, ReLU, 1x1 conv, ReLU, zero-initialised 3x3 conv, so each
    coupling starts as the identity."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.ca = channels // 2
        cb = channels - self.ca
        self.nn = nn.Sequential(nn.Conv2d(self.ca, hidden, 3, padding=1), nn.ReLU(),
                                nn.Conv2d(hidden, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, 2 * cb, 3, padding=1))
        nn.init.zeros_(self.nn[-1].weight)
        nn.init.zeros_(self.nn[-1].bias)

    def _ts(self, xa):
        t, s = self.nn(xa).chunk(2, 1)
        return t, torch.sigmoid(s + 2.0)

    def forward(self, x):
        xa, xb = x[:, :self.ca], x[:, self.ca:]
        t, scale = self._ts(xa)
        return torch.cat([xa, (xb + t) * scale], 1), scale.log().flatten(1).sum(1)

    def inverse(self, y):
        ya, yb = y[:, :self.ca], y[:, self.ca:]
        t, scale = self._ts(ya)
        return torch.cat([ya, yb / scale - t], 1)


class FlowStep(nn.Module):
    """actnorm -> invertible 1x1 conv -> affine coupling (one step of Glow's flow)."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.layers = nn.ModuleList([ActNorm(channels), InvConv1x1(channels), AffineCoupling(channels, hidden)])

    def forward(self, x):
        total = torch.zeros(len(x), dtype=x.dtype, device=x.device)
        for layer in self.layers:
            x, ld = layer(x)
            total = total + ld
        return x, total

    def inverse(self, y):
        for layer in reversed(self.layers):
            y = layer.inverse(y)
        return y


class SplitPrior(nn.Module):
    """Glow's split: half the channels leave as a latent with a Gaussian prior whose mean and log-std are a
    zero-initialised 3x3 conv of the other half (at the top level: of nothing, a learned constant)."""

    def __init__(self, cond_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(max(cond_channels, 1), 2 * out_channels, 3, padding=1)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)
        self.cond = cond_channels

    def params(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.cond == 0:
            h = torch.zeros(h.shape[0], 1, *h.shape[2:], dtype=h.dtype, device=h.device)
        mean, logs = self.conv(h).chunk(2, 1)
        return mean, logs


class Glow(nn.Module):
    """``levels`` scales, each: squeeze, ``depth`` flow steps, split half off (the last level keeps all).
    x (B, C, H, W) with H, W divisible by 2^levels -> standardised latent eps (B, C H W) and log p(x)."""

    def __init__(self, channels: int = 1, size: int = 28, levels: int = 2, depth: int = 8, hidden: int = 64):
        super().__init__()
        if size % (2 ** levels):
            raise ValueError(f"image size {size} is not divisible by 2^levels = {2 ** levels}")
        self.levels, self.steps, self.priors, self.shapes = levels, nn.ModuleList(), nn.ModuleList(), []
        c, s = channels, size
        for lev in range(levels):
            c, s = 4 * c, s // 2
            self.steps.append(nn.ModuleList([FlowStep(c, hidden) for _ in range(depth)]))
            last = lev == levels - 1
            keep = 0 if last else c // 2
            self.priors.append(SplitPrior(keep, c - keep))
            self.shapes.append((c - keep, s, s))                     # the latent leaving at this level
            c = keep
        self.in_shape = (channels, size, size)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logp = torch.zeros(len(x), dtype=x.dtype, device=x.device)
        eps = []
        for steps, prior, last in zip(self.steps, self.priors, range(self.levels)):
            x = squeeze(x)
            for step in steps:
                x, ld = step(x)
                logp = logp + ld
            keep = 0 if last == self.levels - 1 else x.shape[1] // 2
            h, z = x[:, :keep], x[:, keep:]
            mean, logs = prior.params(h if keep else x)
            e = (z - mean) * (-logs).exp()
            logp = logp + (-0.5 * (LOG2PI + e ** 2) - logs).flatten(1).sum(1)   # log N(z; mean, exp(logs)^2)
            eps.append(e.flatten(1))
            x = h
        return torch.cat(eps, 1), logp

    def inverse(self, eps: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """Standardised latent (B, D) -> x; the temperature scales eps (Glow's reduced-temperature samples)."""
        sizes = [math.prod(s) for s in self.shapes]
        parts = list((eps * temperature).split(sizes, 1))
        x = None
        for lev in reversed(range(self.levels)):
            c, h, w = self.shapes[lev]
            e = parts[lev].view(len(eps), c, h, w)
            cond = x if x is not None else torch.zeros(len(eps), 0, h, w, dtype=eps.dtype, device=eps.device)
            mean, logs = self.priors[lev].params(cond if x is not None else e)
            z = mean + logs.exp() * e
            x = torch.cat([cond, z], 1)
            for step in reversed(self.steps[lev]):
                x = step.inverse(x)
            x = unsqueeze(x)
        return x


@register("glow", kind="flow", example=lambda: (dict(channels=1, size=8, levels=2, depth=2, hidden=8),
                                                 (torch.randn(3, 1, 8, 8),)))
def glow(channels: int = 1, size: int = 28, levels: int = 2, depth: int = 8, hidden: int = 64) -> Glow:
    return Glow(channels, size, levels, depth, hidden)
