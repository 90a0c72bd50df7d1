"""Sample-quality metrics on frozen features: FID, KID, precision/recall, density/coverage, class stats.

- FID (Heusel et al., NeurIPS 2017) and KID (Binkowski et al., ICLR 2018) through torchmetrics, fed
  with float64 features of the project's feature network (``eval.featurenet``); ``fid_numpy`` is the
  direct numpy/scipy formula used to check it.
- Improved precision and recall, k = 3 (Kynkäänniemi et al., NeurIPS 2019).
- Density and coverage, k = 5 (Naeem et al., ICML 2020).
- Class coverage / KL of the predicted-class histogram to uniform, class consistency of conditional
  samples, and Stacked-MNIST modes (Metz et al. 2017, Srivastava et al. 2017, Lin et al. 2018).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

FID_MIN_SAMPLES = 2048  # below this FID is strongly biased: report KID instead


class _Features(nn.Module):
    """Identity 'feature extractor' for torchmetrics: the features are computed once, upstream."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return f


def fid(real: torch.Tensor, fake: torch.Tensor, chunk: int = 1000) -> float:
    """FID between feature sets (N, F) and (M, F), torchmetrics' accumulation in float64."""
    from torchmetrics.image.fid import FrechetInceptionDistance
    m = FrechetInceptionDistance(feature=_Features(real.shape[1]), normalize=True)
    for i in range(0, len(real), chunk):
        m.update(real[i:i + chunk].double(), real=True)
    for i in range(0, len(fake), chunk):
        m.update(fake[i:i + chunk].double(), real=False)
    return float(m.compute())


def fid_numpy(real: np.ndarray, fake: np.ndarray) -> float:
    """The direct formula ||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2)) with scipy's sqrtm."""
    from scipy import linalg
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    mu1, mu2 = real.mean(0), fake.mean(0)
    s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2)
    covmean = covmean.real if np.iscomplexobj(covmean) else covmean
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def kid(real: torch.Tensor, fake: torch.Tensor, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float, int]:
    """KID mean and std over random subsets (unbiased MMD^2, cubic polynomial kernel); returns the subset size."""
    from torchmetrics.image.kid import KernelInceptionDistance
    size = int(min(subset_size, len(real), len(fake)))
    import warnings
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        m = KernelInceptionDistance(feature=_Features(real.shape[1]), subsets=subsets, subset_size=size,
                                    normalize=True)
    m.update(real.double(), real=True)
    m.update(fake.double(), real=False)
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)                                     # KID draws its subsets from the global RNG
    try:
        mean, std = m.compute()
    finally:
        torch.random.set_rng_state(state)
    return float(mean), float(std), size


def _kth_nn_radius(x: torch.Tensor, k: int, chunk: int = 2048) -> torch.Tensor:
    """Distance of each row of x to its k-th nearest other row (N,)."""
    out = []
    for i in range(0, len(x), chunk):
        d = torch.cdist(x[i:i + chunk], x)                      # (c, N); self-distance 0 is the 1st
        out.append(d.kthvalue(k + 1, dim=1).values)
    return torch.cat(out)


def _within(a: torch.Tensor, b: torch.Tensor, radii_b: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
    """(len(a), ) count of balls B(b_j, radii_b[j]) containing each a_i."""
    out = []
    for i in range(0, len(a), chunk):
        d = torch.cdist(a[i:i + chunk], b)                      # (c, len(b))
        out.append((d <= radii_b[None]).sum(1))
    return torch.cat(out)


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> dict[str, float]:
    """Improved precision (fakes inside the real k-NN manifold) and recall (reals inside the fake one)."""
    real, fake = real.double(), fake.double()
    r_real, r_fake = _kth_nn_radius(real, k), _kth_nn_radius(fake, k)
    return {"precision": float((_within(fake, real, r_real) > 0).double().mean()),
            "recall": float((_within(real, fake, r_fake) > 0).double().mean())}


def density_coverage(real: torch.Tensor, fake: torch.Tensor, k: int = 5) -> dict[str, float]:
    """Density: mean count of real k-NN balls holding each fake / k; coverage: share of real balls holding a fake."""
    real, fake = real.double(), fake.double()
    r_real = _kth_nn_radius(real, k)
    density = float(_within(fake, real, r_real).double().mean() / k)
    covered = torch.zeros(len(real), dtype=torch.bool)
    for i in range(0, len(real), 2048):                         # real j covered if its nearest fake is within r_j
        d = torch.cdist(real[i:i + 2048], fake).min(1).values
        covered[i:i + 2048] = d <= r_real[i:i + 2048]
    return {"density": density, "coverage": float(covered.double().mean())}


def class_histogram(pred: torch.Tensor, num_classes: int) -> dict[str, float]:
    """Classes hit (share and count) and KL(histogram || uniform) of predicted classes (nats)."""
    counts = torch.bincount(pred.cpu(), minlength=num_classes).double()
    p = counts / counts.sum()
    nz = p > 0
    return {"classes_covered": int(nz.sum()), "class_coverage": float(nz.double().mean()),
            "class_kl": float((p[nz] * (p[nz] * num_classes).log()).sum())}
