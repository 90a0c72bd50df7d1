"""Disentanglement: the Mutual Information Gap (Chen et al., "Isolating Sources of Disentanglement in VAEs",
NeurIPS 2018, https://arxiv.org/abs/1802.04942), on a dataset whose generative factors are known (``shapes``).

    MIG = 1/K sum_k (I(z_j(k); v_k) - max_{j != j(k)} I(z_j; v_k)) / H(v_k),   j(k) = argmax_j I(z_j; v_k)

Each code dimension is discretised into ``bins`` equal-width bins over its range (the estimator of Locatello et
al.'s disentanglement_lib, 20 bins); mutual information and entropy are those of the empirical joint
histogram, in nats. 1: each factor is captured by exactly one dimension; 0: none stands out. A method supplies
``encode(x_uint8) -> (N, d)`` codes (a VAE's posterior means, a flow's latent).
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import ConfigError
from ..results import EvalResult
from .protocols import register_protocol


def discretize(codes: np.ndarray, bins: int = 20) -> np.ndarray:
    """(N, d) -> (N, d) bin indices in [0, bins), equal-width over each dimension's range."""
    lo, hi = codes.min(0), codes.max(0)
    width = np.where(hi > lo, (hi - lo) / bins, 1.0)
    return np.clip(((codes - lo) / width).astype(np.int64), 0, bins - 1)


def entropy(v: np.ndarray) -> float:
    p = np.bincount(v) / len(v)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def mutual_information(a: np.ndarray, b: np.ndarray) -> float:
    """I(a; b) in nats of two discrete (N,) arrays from their joint histogram."""
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    joint = np.bincount(ai * (bi.max() + 1) + bi, minlength=(ai.max() + 1) * (bi.max() + 1))
    p = joint.reshape(ai.max() + 1, bi.max() + 1) / len(a)
    pa, pb = p.sum(1, keepdims=True), p.sum(0, keepdims=True)
    nz = p > 0
    return float((p[nz] * np.log(p[nz] / (pa @ pb)[nz])).sum())


def mig_score(codes: torch.Tensor | np.ndarray, factors: torch.Tensor | np.ndarray, bins: int = 20,
              names: tuple[str, ...] | None = None) -> dict[str, float]:
    """MIG of codes (N, d) for factor indices (N, K); also each factor's gap (``mig_<name>``)."""
    codes, factors = np.asarray(codes, dtype=np.float64), np.asarray(factors).astype(np.int64)
    if codes.ndim != 2 or factors.ndim != 2 or len(codes) != len(factors):
        raise ConfigError(f"mig: codes {codes.shape} and factors {factors.shape} must be (N, d) and (N, K)")
    if codes.shape[1] < 2:
        raise ConfigError("mig: needs at least 2 code dimensions (the gap between the best two)")
    z = discretize(codes, bins)
    names = names or tuple(f"factor{k}" for k in range(factors.shape[1]))
    out, gaps = {}, []
    for k in range(factors.shape[1]):
        h = entropy(factors[:, k])
        if h == 0:
            continue                                    # a constant factor carries no information
        mi = np.sort([mutual_information(z[:, j], factors[:, k]) for j in range(z.shape[1])])[::-1]
        gaps.append((mi[0] - mi[1]) / h)
        out[f"mig_{names[k]}"] = float(gaps[-1])
    out["mig"] = float(np.mean(gaps))
    return out


@register_protocol("mig")
@torch.no_grad()
def mig(method, split: str = "test", n: int = 10_000, bins: int = 20) -> EvalResult:
    """MIG of ``method.encode`` on the first n images of ``split`` of a dataset with a ``factors`` field."""
    from ..data.shapes import FACTORS
    from .generative import split_images
    c = method.cfg
    if not hasattr(method, "encode"):
        raise ConfigError(f"mig: method '{method.name}' has no encoder and cannot be inverted: MIG is not defined")
    ds = split_images(method, split)
    if "factors" not in ds.fields:
        raise ConfigError(f"mig: dataset '{c.dataset}' has no known factors (use dataset=shapes)")
    x, v = ds.images[:n], ds.fields["factors"][:n]
    codes = torch.cat([method.encode(x[i:i + 500]).double().cpu() for i in range(0, len(x), 500)])
    m = mig_score(codes, v, bins, names=FACTORS if v.shape[1] == len(FACTORS) else None)
    proto = {"dataset": c.dataset, "method": method.name, "step": method.step, "split": split, "n": len(x),
             "code": method.code_name(), "code_dims": codes.shape[1],
             "mig": f"Chen et al. 2018; each code dimension in {bins} equal-width bins, histogram MI in nats / "
                    "H(factor), mean over factors"}
    return EvalResult(m, proto)
