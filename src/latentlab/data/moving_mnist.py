"""Moving MNIST: short videos of digits moving on straight lines and bouncing off the canvas edges.

Srivastava et al., "Unsupervised learning of video representations using LSTMs", ICML 2015 (the
standard 64x64, 2 digits, 20 frames setting). Deterministic: video ``i`` of ``MovingMNIST(seed=s)`` is
always the same. ``sample_videos`` renders one-digit clips on a canvas the size of the digit image
(the digit moves within +-margin pixels), so frames have the encoder's input size (temporal_order).
"""

from __future__ import annotations

import math

import torch


def trajectories(n: int, frames: int, lo: float, hi: float, generator: torch.Generator | None = None,
                 max_speed: float = 3.0, min_speed: float = 1.0) -> torch.Tensor:
    """(n, frames, 2) integer (y, x) positions in [lo, hi], constant velocity, bouncing off the edges."""
    if hi < lo or frames < 1:
        raise ValueError(f"need hi >= lo and frames >= 1, got lo={lo}, hi={hi}, frames={frames}")
    u = torch.rand(n, 4, generator=generator)
    pos = lo + u[:, :2] * (hi - lo)                                             # (n, 2)
    angle, speed = u[:, 2] * 2 * math.pi, min_speed + u[:, 3] * (max_speed - min_speed)
    vel = torch.stack([angle.sin(), angle.cos()], 1) * speed[:, None]           # (n, 2)
    out = []
    for _ in range(frames):
        out.append(pos.round())
        pos = pos + vel
        for _bounce in range(4):                                                # reflect at both edges
            over, under = pos > hi, pos < lo
            pos = torch.where(over, 2 * hi - pos, torch.where(under, 2 * lo - pos, pos))
            vel = torch.where(over | under, -vel, vel)
            if not (over | under).any():
                break
        pos = pos.clamp(lo, hi)
    return torch.stack(out, 1).long()


def render(digits: torch.Tensor, positions: torch.Tensor, canvas: int) -> torch.Tensor:
    """digits (n, D, C, h, w) at positions (n, D, T, 2) -> videos (n, T, C, canvas, canvas), max over digits."""
    n, nd, c, h, w = digits.shape
    t = positions.shape[2]
    out = torch.zeros(n, t, c, canvas, canvas, dtype=digits.dtype)
    for i in range(n):
        for d in range(nd):
            for f in range(t):
                y, x = positions[i, d, f].tolist()
                y0, x0, y1, x1 = max(y, 0), max(x, 0), min(y + h, canvas), min(x + w, canvas)
                if y1 <= y0 or x1 <= x0:
                    continue
                patch = digits[i, d, :, y0 - y:y1 - y, x0 - x:x1 - x]
                region = out[i, f, :, y0:y1, x0:x1]
                torch.maximum(region, patch, out=region)
    return out


def sample_videos(images: torch.Tensor, frames: int, margin: int, generator: torch.Generator | None = None,
                  max_speed: float = 3.0) -> torch.Tensor:
    """One moving digit per video on a canvas of the image's size: (B, C, S, S) -> (B, frames, C, S, S)."""
    b, c, s, _ = images.shape
    pos = trajectories(b, frames, -margin, margin, generator, max_speed)
    return render(images[:, None], pos[:, None], s)


class MovingMNIST:
    """``num_videos`` videos of ``num_digits`` digits from ``images`` (N, C, h, w) uint8, deterministic."""

    def __init__(self, images: torch.Tensor, num_videos: int = 10000, frames: int = 20, canvas: int = 64,
                 num_digits: int = 2, seed: int = 0):
        if images.ndim != 4 or images.shape[-1] > canvas:
            raise ValueError(f"images must be (N, C, h, w) with w <= canvas={canvas}, got {tuple(images.shape)}")
        self.images, self.num_videos, self.frames = images, num_videos, frames
        self.canvas, self.num_digits, self.seed = canvas, num_digits, seed

    def __len__(self) -> int:
        return self.num_videos

    def __getitem__(self, i: int) -> torch.Tensor:
        """Video ``i``: (frames, C, canvas, canvas), same dtype as the images."""
        if not 0 <= i < self.num_videos:
            raise IndexError(i)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + i)
        idx = torch.randint(len(self.images), (self.num_digits,), generator=g)
        h = self.images.shape[-1]
        pos = trajectories(self.num_digits, self.frames, 0, self.canvas - h, g)   # (D, T, 2)
        return render(self.images[idx][None], pos[None], self.canvas)[0]
