"""A dSprites-style set rendered here: binary 2-D shapes with known, independent generative factors.

Matthey et al., "dSprites: Disentanglement testing Sprites dataset", 2017 (64x64; 3 shapes x 6 scales x 40
orientations x 32 x 32 positions), used by beta-VAE (Higgins et al., ICLR 2017) and MIG (Chen et al.,
NeurIPS 2018). This one is smaller so that a CPU can train on it: 32x32 pixels, the same five factors

    shape (square, ellipse, triangle) x scale (6) x orientation (40 over [0, 2 pi)) x x-position (16) x y-position (16)

= 184,320 combinations. Each split holds images of factor combinations drawn uniformly and independently with a
seeded generator (train and test use different seeds), rendered by 2x2 supersampling and thresholded at half
coverage (binary, as dSprites). Fields: ``image`` (uint8, 0 or 255), ``label`` (the shape) and ``factors``
(int64 (N, 5), the index of each factor, in the order of ``FACTORS``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

FACTORS = ("shape", "scale", "orientation", "pos_x", "pos_y")
LEVELS = (3, 6, 40, 16, 16)
SHAPES = ("square", "ellipse", "triangle")
SIZE = 32
SIZES = {"train": 60_000, "test": 10_000}
SEED = 2017
FIELDS = {"image": "uint8 (1, 32, 32), 0 or 255", "label": "int64 shape", "factors": "int64 (5,) factor indices"}


def render(factors: torch.Tensor, size: int = SIZE, supersample: int = 2) -> torch.Tensor:
    """Factor indices (N, 5) -> uint8 images (N, 1, size, size)."""
    f = factors.long()
    n, s = len(f), size * supersample
    scale = 0.5 + 0.5 * f[:, 1].float() / (LEVELS[1] - 1)                   # 0.5 .. 1 (dSprites' range)
    theta = 2 * math.pi * f[:, 2].float() / LEVELS[2]
    cx = 0.25 + 0.5 * f[:, 3].float() / (LEVELS[3] - 1)                      # centres in [0.25, 0.75]
    cy = 0.25 + 0.5 * f[:, 4].float() / (LEVELS[4] - 1)
    grid = (torch.arange(s, dtype=torch.float32) + 0.5) / s                    # pixel centres in [0, 1]
    px, py = grid[None, None, :] - cx[:, None, None], grid[None, :, None] - cy[:, None, None]  # (N, s, s)
    r = 0.18 * scale[:, None, None]                                           # the shape's radius
    cos, sin = theta.cos()[:, None, None], theta.sin()[:, None, None]
    u, v = (cos * px + sin * py) / r, (-sin * px + cos * py) / r              # object coordinates
    square = (u.abs() <= 0.8) & (v.abs() <= 0.8)
    ellipse = u ** 2 + (v / 0.55) ** 2 <= 1
    # an equilateral triangle pointing up in object coordinates, centred on its centroid
    triangle = (v >= -0.5) & (math.sqrt(3) * u + v <= 1) & (-math.sqrt(3) * u + v <= 1)
    inside = torch.where((f[:, 0] == 0)[:, None, None], square,
                         torch.where((f[:, 0] == 1)[:, None, None], ellipse, triangle)).float()
    cover = inside.reshape(n, size, supersample, size, supersample).mean((2, 4))
    return ((cover >= 0.5).to(torch.uint8) * 255)[:, None]


def sample_factors(n: int, seed: int) -> torch.Tensor:
    """(n, 5) factor indices, each uniform over its levels, independent."""
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randint(k, (n,), generator=g) for k in LEVELS], 1)


def load(data_dir: Path, split: str, lazy: bool = False, n: int | None = None,
         seed: int = SEED) -> dict[str, np.ndarray]:
    """The split's images, shapes and factors (generated; ``data_dir`` is not read)."""
    n = SIZES[split] if n is None else n
    f = sample_factors(n, seed + (0 if split == "train" else 1))
    x = torch.cat([render(f[i:i + 5000]) for i in range(0, n, 5000)])
    return {"image": x.numpy(), "label": f[:, 0].numpy().copy(), "factors": f.numpy()}
