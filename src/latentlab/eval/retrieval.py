"""Retrieval by L2 nearest neighbours, in feature space and in pixel space.

Krizhevsky et al. 2012 (Sec. 6.1, Fig. 4): the 4096-d last hidden layer's L2 nearest neighbours in the
training set belong to the query's class though they differ in pose, where pixel-space L2 would fail.
Metrics by class label: precision@k (the fraction of the k nearest gallery images of the query's
class) and mAP (mean over queries of the average precision of the full gallery ranking).
"""

from __future__ import annotations

import torch

from ..data import load_dataset
from ..results import EvalResult
from .protocols import register_protocol


def l2_neighbours(queries: torch.Tensor, gallery: torch.Tensor, k: int, exclude_self: bool = False,
                  chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """(Q, F), (N, F) -> distances and indices (Q, k) of each query's k nearest gallery rows (L2)."""
    if queries.shape[1] != gallery.shape[1]:
        raise ValueError(f"query dim {queries.shape[1]} != gallery dim {gallery.shape[1]}")
    if not 1 <= k <= len(gallery) - int(exclude_self):
        raise ValueError(f"k={k} must be in [1, {len(gallery) - int(exclude_self)}]")
    ds, ix = [], []
    for s in range(0, len(queries), chunk):
        d = torch.cdist(queries[s:s + chunk].double(), gallery.double())       # (q, N)
        if exclude_self:
            d[torch.arange(len(d)), torch.arange(s, s + len(d))] = float("inf")
        v, i = d.topk(k, dim=1, largest=False)
        ds.append(v.float()), ix.append(i)
    return torch.cat(ds), torch.cat(ix)


def retrieval_metrics(queries: torch.Tensor, q_labels: torch.Tensor, gallery: torch.Tensor,
                      g_labels: torch.Tensor, k: int = 6, chunk: int = 256) -> dict[str, float]:
    """precision@k and mAP of L2 retrieval, relevance = same class label.

    AP of one query = mean over the ranks r of its relevant gallery items of precision@r."""
    if len(queries) != len(q_labels) or len(gallery) != len(g_labels):
        raise ValueError("features and labels differ in length")
    n_rel_tot = torch.stack([(g_labels == c).sum() for c in q_labels.unique()])
    if (n_rel_tot == 0).any():
        raise ValueError("a query class has no gallery item")
    precs, aps = [], []
    gallery = gallery.float()
    ranks = torch.arange(1, len(gallery) + 1, dtype=torch.float64)
    for s in range(0, len(queries), chunk):
        d = torch.cdist(queries[s:s + chunk].float(), gallery)                 # (q, N)
        order = d.argsort(dim=1, stable=True)
        rel = (g_labels[order] == q_labels[s:s + chunk, None]).double()        # (q, N) relevance by rank
        hits = rel.cumsum(1)
        precs.append(hits[:, k - 1] / k)
        aps.append((rel * hits / ranks).sum(1) / rel.sum(1))
    return {"precision": torch.cat(precs).mean().item(), "map": torch.cat(aps).mean().item()}


def subsample(n: int, m: int | None, seed: int) -> torch.Tensor:
    """Indices of a seeded subset of size min(n, m) of range(n) (all, in order, if m is None or >= n)."""
    if m is None or m >= n:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:m].sort().values


def retrieval_eval(method, k: int = 6, layer: str | None = None, n_gallery: int | None = 10000,
                   n_query: int | None = 1000, seed: int = 0) -> EvalResult:
    """Queries from the test split, gallery from the train split, descriptors of ``method``'s encoder."""
    from .representation import descriptors, pixels
    cfg = method.cfg
    train = load_dataset(cfg.dataset, "train", cfg.data_dir)
    test = load_dataset(cfg.dataset, "test", cfg.data_dir)
    gi, qi = subsample(len(train), n_gallery, seed), subsample(len(test), n_query, seed + 1)
    gx, gy, qx, qy = train.images[gi], train.labels[gi], test.images[qi], test.labels[qi]
    feat = retrieval_metrics(descriptors(method, qx, layer), qy, descriptors(method, gx, layer), gy, k)
    pix = retrieval_metrics(pixels(qx), qy, pixels(gx), gy, k)
    metrics = {"feature_map": feat["map"], f"feature_precision@{k}": feat["precision"],
               "pixel_map": pix["map"], f"pixel_precision@{k}": pix["precision"]}
    return EvalResult(metrics, {"name": "retrieval", "dataset": cfg.dataset, "step": method.step,
                                "layer": layer or "forward_features (penultimate)", "distance": "L2", "k": k,
                                "relevance": "same class label", "query_split": "test", "n_query": len(qi),
                                "gallery_split": "train", "n_gallery": len(gi), "subsample_seed": seed,
                                "pixel_space": "raw pixels in [0, 1], flattened"})


@register_protocol("retrieval")
def retrieval_protocol(method) -> EvalResult:
    """``latentlab eval RUN --protocol retrieval``: 1,000 test queries against 10,000 train images, k=6."""
    return retrieval_eval(method)
