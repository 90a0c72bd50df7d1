"""Synthetic low-dimensional distributions: Gaussian mixtures for mode-collapse experiments.

ring8 and grid25 are the 2-D mixtures of the unrolled-GAN / VEEGAN / PacGAN benchmarks
(Metz et al. 2017; Srivastava et al. 2017; Lin et al., "PacGAN", NeurIPS 2018), with PacGAN's
sigmas: 8 modes on the unit circle with sigma 0.01, 25 modes on {-4,-2,0,2,4}^2 with sigma 0.05.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch

from latentlab.errors import DataError


@dataclass
class Distribution:
    name: str
    dim: int
    modes: torch.Tensor  # (M, dim) float32
    sigma: float
    weights: torch.Tensor | None = None  # (M,) mixture weights; None = uniform

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, dim) float32: pick a mode (uniformly unless weighted), add sigma * N(0, I)."""
        m = len(self.modes)
        if self.weights is None:
            k = torch.randint(m, (n,), generator=generator)
        else:
            k = torch.multinomial(self.weights.float(), n, replacement=True, generator=generator)
        noise = torch.randn(n, self.dim, generator=generator)
        return self.modes[k] + self.sigma * noise


def gaussian_1d(mean: float = 4.0, std: float = 1.25) -> Distribution:
    """One Gaussian N(mean, std^2): the classic 1-D GAN toy target (registered with mean 4, std 1.25)."""
    return Distribution("gauss1d", 1, torch.tensor([[mean]], dtype=torch.float32), float(std))


def ring(n_modes: int = 8, radius: float = 1.0, sigma: float = 0.01) -> Distribution:
    t = 2 * math.pi * torch.arange(n_modes, dtype=torch.float64) / n_modes
    modes = radius * torch.stack([torch.cos(t), torch.sin(t)], 1)  # (M, 2)
    return Distribution(f"ring{n_modes}", 2, modes.float(), sigma)


def grid(values=(-4.0, -2.0, 0.0, 2.0, 4.0), sigma: float = 0.05) -> Distribution:
    modes = torch.tensor(list(itertools.product(values, values)), dtype=torch.float32)  # (M, 2)
    return Distribution(f"grid{len(modes)}", 2, modes, sigma)


DISTRIBUTIONS: dict[str, Distribution] = {d.name: d for d in (gaussian_1d(), ring(), grid())}


def is_synthetic(name: str) -> bool:
    return name in DISTRIBUTIONS


def get_distribution(name: str) -> Distribution:
    if name not in DISTRIBUTIONS:
        raise DataError(f"{name}: unknown synthetic distribution; known: {', '.join(DISTRIBUTIONS)}")
    return DISTRIBUTIONS[name]
