"""Mode coverage on synthetic mixtures, the VEEGAN / PacGAN protocol.

Srivastava et al., "VEEGAN", NeurIPS 2017; Lin et al., "PacGAN", NeurIPS 2018:
draw 2,500 samples; a sample is *high quality* if it lies within 3 sigma of its nearest mode;
a mode is *captured* if it is the nearest mode of at least one high-quality sample.
"""

from __future__ import annotations

import torch


def mode_coverage(samples: torch.Tensor, modes: torch.Tensor, sigma: float, threshold: float = 3.0) -> dict:
    """samples (N, d), modes (M, d) -> modes captured, high-quality fraction, KL(hq histogram || uniform)."""
    d = torch.cdist(samples.double(), modes.double())          # (N, M)
    dist, nearest = d.min(dim=1)                               # (N,)
    hq = dist <= threshold * sigma
    counts = torch.bincount(nearest[hq], minlength=len(modes)).double()
    captured = int((counts > 0).sum())
    p = counts / counts.sum().clamp_min(1)
    nz = p > 0
    kl = float((p[nz] * (p[nz] * len(modes)).log()).sum()) if hq.any() else float("inf")
    return {"modes": captured, "hq_fraction": float(hq.double().mean()), "kl_modes": kl,
            "protocol": {"n_samples": len(samples), "threshold_sigmas": threshold, "sigma": sigma,
                         "num_modes": len(modes), "reference": "VEEGAN/PacGAN mode-coverage protocol"}}
