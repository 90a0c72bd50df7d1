"""Sample-quality metrics on frozen features: FID, KID, precision/recall, density/coverage, class stats.

- FID (Heusel et al., NeurIPS 2017) and KID (Binkowski et al., ICLR 2018) on float64 features of the
  project's feature network (``eval.featurenet``), computed here by torchmetrics' formulas and tested equal
  to torchmetrics (``fid_torchmetrics``; ``fid_numpy`` is the direct numpy/scipy formula).
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
KID_FULL_KERNEL_MAX = 10_000  # up to this many samples KID builds its kernel matrices once (0.8 GB each at most)


class _Features(nn.Module):
    """Identity 'feature extractor' for torchmetrics: the features are computed once, upstream."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return f


def fid(real: torch.Tensor, fake: torch.Tensor) -> float:
    """FID between feature sets (N, F) and (M, F) (Heusel et al. 2017), in float64:
    ||mu_r - mu_f||^2 + Tr(S_r) + Tr(S_f) - 2 sum_i sqrt(lambda_i(S_r S_f)), the unbiased covariances and
    the eigenvalues of S_r S_f, as torchmetrics' ``FrechetInceptionDistance`` computes it (equal to it:
    tests/test_gans.py); written here because importing torchmetrics costs ~1.5 s of a fresh
    ``latentlab eval``."""
    r, f = real.double(), fake.double()
    mu_r, mu_f = r.mean(0), f.mean(0)
    s_r, s_f = torch.cov(r.T), torch.cov(f.T)                              # (F, F), divided by n - 1
    tr_sqrt = torch.linalg.eigvals(s_r @ s_f).sqrt().real.sum()
    return float((mu_r - mu_f).square().sum() + s_r.trace() + s_f.trace() - 2 * tr_sqrt)


def fid_torchmetrics(real: torch.Tensor, fake: torch.Tensor, chunk: int = 1000) -> float:
    """The same FID by torchmetrics' ``FrechetInceptionDistance`` on identity features (the reference)."""
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
    """KID mean and std over random subsets (unbiased MMD^2, cubic polynomial kernel); returns the subset size.

    torchmetrics' ``KernelInceptionDistance`` computed faster: the three kernel matrices are built once on
    all samples and every subset's block sums are read off them as quadratic forms, instead of rebuilding
    the kernels per subset (above ``KID_FULL_KERNEL_MAX`` samples it does build them per subset). The subsets are
    the same draws (``randperm`` of the reals, then of the fakes, per subset, from ``torch.manual_seed(seed)``),
    so the value equals torchmetrics' up to float64 rounding (tested).
    """
    size = int(min(subset_size, len(real), len(fake)))
    real, fake = real.double(), fake.double()
    kernel = lambda a, b: (a @ b.T / real.shape[1] + 1) ** 3    # (|a|, |b|), gamma = 1 / F, coef 1
    g = torch.Generator().manual_seed(seed)
    draws = [(torch.randperm(len(real), generator=g)[:size], torch.randperm(len(fake), generator=g)[:size])
             for _ in range(subsets)]
    if max(len(real), len(fake)) <= KID_FULL_KERNEL_MAX:
        # subset sums as quadratic forms s^T K s of 0/1 membership rows s: (S, N) and (S, M)
        s_r, s_f = torch.zeros(subsets, len(real), dtype=torch.float64), torch.zeros(subsets, len(fake), dtype=torch.float64)
        for i, (pr, pf) in enumerate(draws):
            s_r[i, pr], s_f[i, pf] = 1.0, 1.0
        k_rr, k_ff = kernel(real, real), kernel(fake, fake)
        xx = ((s_r @ k_rr) * s_r).sum(1) - s_r @ k_rr.diagonal()   # (S,) off-diagonal sums
        yy = ((s_f @ k_ff) * s_f).sum(1) - s_f @ k_ff.diagonal()
        del k_rr, k_ff
        xy = ((s_r @ kernel(real, fake)) * s_f).sum(1)
    else:                                                       # per subset: memory stays O(size^2)
        parts = []
        for pr, pf in draws:
            a, b = kernel(real[pr], real[pr]), kernel(fake[pf], fake[pf])
            parts.append(torch.stack([a.sum() - a.diagonal().sum(), b.sum() - b.diagonal().sum(),
                                      kernel(real[pr], fake[pf]).sum()]))
        xx, yy, xy = torch.stack(parts).T
    scores = (xx + yy) / (size * (size - 1)) - 2 * xy / size ** 2
    return float(scores.mean()), float(scores.std(unbiased=False)), size


def _radii(x: torch.Tensor, ks: tuple[int, ...], chunk: int = 2048) -> dict[int, torch.Tensor]:
    """Distance of each row of x to its k-th nearest other row, for each k in ks: {k: (N,)}."""
    kmax, out = max(ks), {k: [] for k in ks}
    for i in range(0, len(x), chunk):
        d = torch.cdist(x[i:i + chunk], x)                      # (c, N); self-distance 0 is the 1st
        near = d.topk(kmax + 1, dim=1, largest=False).values    # (c, kmax + 1), ascending
        for k in ks:
            out[k].append(near[:, k])
    return {k: torch.cat(v) for k, v in out.items()}


def manifold_metrics(real: torch.Tensor, fake: torch.Tensor, k_pr: int = 3, k_dc: int = 5,
                     chunk: int = 2048) -> dict[str, float]:
    """Precision and recall (k_pr-NN balls, Kynkäänniemi et al. 2019), density and coverage (k_dc-NN balls,
    Naeem et al. 2020), from one pass over the fake-real distances (each distance matrix built once).

    precision: share of fakes inside some real ball; recall: share of reals inside some fake ball;
    density: mean number of real balls holding a fake, / k_dc; coverage: share of real balls holding a fake.
    """
    real, fake = real.double(), fake.double()
    r_real, r_fake = _radii(real, tuple(sorted({k_pr, k_dc}))), _radii(fake, (k_pr,))[k_pr]
    in_real, count, nearest = [], [], torch.full((len(real),), float("inf"), dtype=torch.float64)
    recalled = torch.zeros(len(real), dtype=torch.bool)
    for i in range(0, len(fake), chunk):
        d = torch.cdist(fake[i:i + chunk], real)                # (c, N)
        in_real.append((d <= r_real[k_pr][None]).any(1))
        count.append((d <= r_real[k_dc][None]).sum(1))
        recalled |= (d <= r_fake[i:i + chunk, None]).any(0)
        nearest = torch.minimum(nearest, d.min(0).values)
    return {"precision": float(torch.cat(in_real).double().mean()), "recall": float(recalled.double().mean()),
            "density": float(torch.cat(count).double().mean() / k_dc),
            "coverage": float((nearest <= r_real[k_dc]).double().mean())}


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> dict[str, float]:
    """Improved precision (fakes inside the real k-NN manifold) and recall (reals inside the fake one)."""
    m = manifold_metrics(real, fake, k_pr=k, k_dc=k)
    return {"precision": m["precision"], "recall": m["recall"]}


def density_coverage(real: torch.Tensor, fake: torch.Tensor, k: int = 5) -> dict[str, float]:
    """Density: mean count of real k-NN balls holding each fake / k; coverage: share of real balls holding a fake."""
    m = manifold_metrics(real, fake, k_pr=k, k_dc=k)
    return {"density": m["density"], "coverage": m["coverage"]}


def class_histogram(pred: torch.Tensor, num_classes: int) -> dict[str, float]:
    """Classes hit (share and count) and KL(histogram || uniform) of predicted classes (nats)."""
    counts = torch.bincount(pred.cpu(), minlength=num_classes).double()
    p = counts / counts.sum()
    nz = p > 0
    return {"classes_covered": int(nz.sum()), "class_coverage": float(nz.double().mean()),
            "class_kl": float((p[nz] * (p[nz] * num_classes).log()).sum())}


CONFIDENT = 0.9  # a sample "reads" as its class when the frozen classifier gives it probability >= this


def sample_metrics(real: torch.Tensor, fake: torch.Tensor, pred: torch.Tensor, conf: torch.Tensor,
                   num_classes: int, seed: int = 0) -> tuple[dict[str, float], dict[str, str]]:
    """Every unconditional metric of a sample set, and its protocol, from frozen-network outputs.

    real, fake: features (N, F) and (M, F); pred, conf: the classifier's class and confidence of each fake.
    The one scorer of the image GANs and of a peer's samples (``benchmarks/gan_mnist.py``).
    """
    m: dict[str, float] = {}
    if min(len(real), len(fake)) >= FID_MIN_SAMPLES:
        m["fid"] = fid(real, fake)
    m["kid"], m["kid_std"], kid_size = kid(real, fake, seed=seed)
    m.update(manifold_metrics(real, fake, k_pr=3, k_dc=5))
    m.update(class_histogram(pred, num_classes))
    m["confident_fraction"] = float((conf >= CONFIDENT).double().mean())
    proto = {"fid": "Frechet distance in float64 (torchmetrics' FrechetInceptionDistance formula), custom features"
             if "fid" in m else
             f"not computed: fewer than {FID_MIN_SAMPLES} samples (use kid)",
             "kid": f"torchmetrics KernelInceptionDistance, 100 subsets of {kid_size}, cubic kernel",
             "precision_recall": "Kynkaanniemi et al. 2019, k=3", "density_coverage": "Naeem et al. 2020, k=5",
             "class_stats": "frozen classifier's predicted class of each fake; KL(hist || uniform), nats",
             "confident_fraction": f"share of fakes whose predicted class has softmax probability >= {CONFIDENT}"}
    return m, proto
