"""What first-layer filters look like, as numbers: oriented edges and colour blobs.

Krizhevsky et al. 2012 (Fig. 3) show that AlexNet's 96 first-layer kernels are frequency- and
orientation-selective edges and colour blobs. Pictures (``latentlab viz filters``) show it; this module
measures it, per filter of a (F, C, k, k) weight tensor:

- ``orientation``: the orientation selectivity of the filter's luminance part (the mean over input
  channels). Its power spectrum P(f) on a zero-padded ``fft`` grid, DC removed, gives
  |sum_f P(f) exp(2i theta_f)| / sum_f P(f), theta_f the angle of frequency f: 1 for a pure oriented
  grating or edge, 0 for an isotropic pattern (circular statistics of the spectrum's orientations; the
  doubled angle makes f and -f agree). White noise gives a small value (~ 1 / sqrt(k^2)).
- ``colour``: the part of the filter's energy in its chromatic component, ||w - mean_c w||^2 / ||w||^2
  (0 for a grey filter that weighs every channel alike; 2/3 in expectation for i.i.d. channels).
- ``lowpass``: the part of the filter's power (DC included) at spatial frequencies below ``cutoff``
  cycles per pixel: close to 1 for a smooth blob, ~ the band's share of the grid for white noise.

``kinds`` sorts the filters with thresholds fixed before any measurement (stated in ``THRESHOLDS``): an
*oriented edge* has orientation >= 0.5 (a 5x5 Gabor 0.71, a step edge 0.56; i.i.d. Gaussian filters:
mean 0.19, 95th percentile 0.37); a *colour blob* has colour >= 0.5 and lowpass >= 0.4 (a smooth
chromatic patch: a 5x5 Gaussian of sigma 1.25 has lowpass 0.70; i.i.d. Gaussian filters: mean 0.07, 95th
percentile 0.12). The claim compares the trained filters with the same network's initial (random) filters,
which sets the chance level of each fraction.
"""

from __future__ import annotations

import math

import torch

THRESHOLDS = {"edge_orientation": 0.5, "blob_colour": 0.5, "blob_lowpass": 0.4}


def _spectrum(w: torch.Tensor, fft: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(F, k, k) -> power (F, fft, fft), frequency radius and angle grids (fft, fft) in cycles/pixel."""
    p = torch.fft.fft2(w.double(), s=(fft, fft)).abs() ** 2
    f = torch.fft.fftfreq(fft, dtype=torch.float64)
    fy, fx = torch.meshgrid(f, f, indexing="ij")
    return p, torch.sqrt(fx ** 2 + fy ** 2), torch.atan2(fy, fx)


def filter_stats(weight: torch.Tensor, fft: int = 32, cutoff: float = 0.15) -> dict[str, torch.Tensor]:
    """Per-filter ``orientation``, ``colour`` and ``lowpass`` (each (F,) in [0, 1]) of a conv weight
    (F, C, k, k). ``colour`` is 0 for one input channel."""
    if weight.dim() != 4 or weight.shape[-1] != weight.shape[-2]:
        raise ValueError(f"expected a conv weight (F, C, k, k), got shape {tuple(weight.shape)}")
    w = weight.detach().double().cpu()
    lum = w.mean(1)                                                           # (F, k, k)
    total = (w ** 2).sum((1, 2, 3)).clamp_min(1e-30)
    colour = ((w - w.mean(1, keepdim=True)) ** 2).sum((1, 2, 3)) / total     # (F,)
    p, r, theta = _spectrum(lum, fft)
    ac = p * (r > 0)                                                          # DC removed
    z = (ac * torch.exp(2j * theta)).sum((1, 2)).abs()
    orientation = z / ac.sum((1, 2)).clamp_min(1e-30)
    pw, _, _ = _spectrum(w.flatten(0, 1), fft)                                # every channel's spectrum
    pw = pw.view(w.shape[0], w.shape[1], fft, fft).sum(1)
    lowpass = (pw * (r < cutoff)).sum((1, 2)) / pw.sum((1, 2)).clamp_min(1e-30)
    return {"orientation": orientation.float(), "colour": colour.float(), "lowpass": lowpass.float()}


def kinds(stats: dict[str, torch.Tensor], thresholds: dict[str, float] = THRESHOLDS) -> dict[str, torch.Tensor]:
    """Boolean (F,) masks ``edge`` and ``blob`` from :func:`filter_stats` with the fixed thresholds."""
    t = thresholds
    edge = stats["orientation"] >= t["edge_orientation"]
    blob = (stats["colour"] >= t["blob_colour"]) & (stats["lowpass"] >= t["blob_lowpass"])
    return {"edge": edge, "blob": blob}


def summary(weight: torch.Tensor) -> dict[str, float]:
    """Means of the three measures and the fractions of edges and colour blobs of one conv weight."""
    s = filter_stats(weight)
    k = kinds(s)
    out = {f"mean_{n}": v.mean().item() for n, v in s.items()}
    out.update(edge_fraction=k["edge"].float().mean().item(), blob_fraction=k["blob"].float().mean().item(),
               n_filters=int(weight.shape[0]), kernel=int(weight.shape[-1]))
    return out


def gabor(k: int, theta: float, freq: float = 0.25, sigma: float | None = None) -> torch.Tensor:
    """A (k, k) Gabor patch (cosine grating at angle ``theta`` under a Gaussian): the textbook edge detector,
    used by the tests as a hand-made oriented filter."""
    sigma = sigma or k / 4
    ar = torch.arange(k, dtype=torch.float64) - (k - 1) / 2
    y, x = torch.meshgrid(ar, ar, indexing="ij")
    u = x * math.cos(theta) + y * math.sin(theta)
    return torch.exp(-(x ** 2 + y ** 2) / (2 * sigma ** 2)) * torch.cos(2 * math.pi * freq * u)
