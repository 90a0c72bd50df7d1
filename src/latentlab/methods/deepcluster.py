"""DeepCluster: alternate k-means on the features (pseudo-labels) and classification of those labels.

Caron et al., "Deep clustering for unsupervised learning of visual features", ECCV 2018,
https://arxiv.org/abs/1807.05520. Every ``reassign_every`` steps (default: one epoch, as in the paper)
the non-augmented features are PCA-whitened, L2-normalised and clustered by k-means; the classifier
head is re-initialised and images are sampled uniformly over the clusters (Sec. 3.3: avoiding trivial
solutions), empty clusters being split off non-empty ones as in the paper (``kmeans``). k = 100 (10x
the classes; the paper used 10000 on ImageNet).
``cluster_samples`` limits clustering to a subset for short budgets. Pseudo-labels are checkpointed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import param
from ._ssl import SSLConfig, SSLMethod
from ..engine.method import register_method


def pca_whiten(x: torch.Tensor, dim: int) -> torch.Tensor:
    """(N, F) -> (N, min(dim, F)) PCA-whitened, then L2-normalised rows."""
    x = x - x.mean(0)
    _, s, vh = torch.linalg.svd(x, full_matrices=False)
    d = min(dim, vh.shape[0])
    z = x @ vh[:d].t() / (s[:d] / (len(x) - 1) ** 0.5 + 1e-5)
    return F.normalize(z, dim=1)


def _split_empty(x, c, assign, generator):
    """DeepCluster's remedy for empty clusters (Caron et al. 2018, Sec. 3.3): each empty cluster takes the
    centroid of a non-empty cluster, drawn with probability proportional to its size, with a small random
    perturbation (+eps for the new one, -eps for the donor), so the donor's points split between the two."""
    counts = torch.bincount(assign, minlength=len(c))
    for e in (counts == 0).nonzero().flatten().tolist():
        donor = int(torch.multinomial((counts * (counts > 1)).double(), 1, generator=generator))
        eps = 1e-4 * torch.randn(x.shape[1], generator=generator, dtype=x.dtype).to(x.device)
        c[e], c[donor] = c[donor] + eps, c[donor] - eps
        pts = (assign == donor).nonzero().squeeze(1)                       # reassign the donor's points
        assign[pts] = torch.where(torch.cdist(x[pts], c[[donor, e]]).argmin(1) == 1, e, donor)
        if not (assign[pts] == e).any():                                 # a tie kept them all: split evenly
            assign[pts[::2]] = e
        counts[e] = int((assign[pts] == e).sum())
        counts[donor] -= counts[e]
    return c, assign


def kmeans(x: torch.Tensor, k: int, iters: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means (squared L2) -> (assignments (N,), centroids (k, D)). Empty clusters are split off
    non-empty ones as in DeepCluster (``_split_empty``), after every iteration and on the final assignment,
    so no cluster ends empty (needs n >= k)."""
    n = len(x)
    if not 1 <= k <= n:
        raise ValueError(f"k must be in 1..{n}, got {k}")
    c = x[torch.randperm(n, generator=generator)[:k]].clone()
    for _ in range(iters):
        assign = torch.cdist(x, c).argmin(1)
        c, assign = _split_empty(x, c, assign, generator)
        counts = torch.bincount(assign, minlength=k)
        c = torch.zeros_like(c).index_add_(0, assign, x) / counts[:, None]
    assign = torch.cdist(x, c).argmin(1)
    c, assign = _split_empty(x, c, assign, generator)
    return assign, c


@dataclass
class DeepClusterConfig(SSLConfig):
    num_clusters: int = param(100, ge=2, help="k of k-means (ImageNet in the paper: 10000)")
    pca_dim: int = param(256, ge=1, help="PCA dimension before k-means (capped at the feature size)")
    kmeans_iters: int = param(20, ge=1, help="Lloyd iterations per reassignment")
    reassign_every: int = param(0, ge=0, help="steps between reassignments (0: every epoch)")
    cluster_samples: int = param(0, ge=0, help="cluster only this many train images (0: all)")


@register_method
class DeepCluster(SSLMethod):
    name = "deepcluster"
    summary = "k-means pseudo-labels of the features, reassigned each epoch, learned by classification"
    paper = "Caron et al. 2018, Deep clustering for unsupervised learning of visual features"
    Config = DeepClusterConfig
    trainable = ("backbone", "cluster_head")
    extra_state = ("pseudo_labels",)

    def __init__(self, cfg: DeepClusterConfig):
        super().__init__(cfg)
        self.cluster_head = nn.Linear(self.feat_dim, cfg.num_clusters)
        self.pseudo_labels = torch.full((len(self.train_set),), -1, dtype=torch.long)   # -1: not clustered

    def period(self) -> int:
        return self.cfg.reassign_every or max(1, len(self.train_set) // self.cfg.batch_size)

    @torch.no_grad()
    def reassign(self, step: int) -> None:
        from ..eval.representation import extract
        c = self.cfg
        g = torch.Generator().manual_seed(c.seed * 7919 + step)                  # same on every process
        n = len(self.train_set)
        idx = torch.randperm(n, generator=g)[:c.cluster_samples] if c.cluster_samples else torch.arange(n)
        feats = pca_whiten(extract(self.backbone, self.train_set.images[idx], self.prepare_images), c.pca_dim)
        assign, _ = kmeans(feats, min(c.num_clusters, len(idx)), c.kmeans_iters, g)
        self.pseudo_labels = torch.full((n,), -1, dtype=torch.long, device=self.pseudo_labels.device)
        self.pseudo_labels[idx.to(self.pseudo_labels.device)] = assign.to(self.pseudo_labels.device)
        head = self.cluster_head                                                 # fresh top layer, fresh moments
        for p in head.parameters():
            getattr(self.optimizers["model"], "optimizer", self.optimizers["model"]).state.pop(p, None)
        nn.init.normal_(head.weight, std=0.01), nn.init.zeros_(head.bias)

    def training_step(self, batch, step):
        if step % self.period() == 0:
            self.reassign(step)
        lab = self.pseudo_labels.cpu()
        counts = torch.bincount(lab[lab >= 0], minlength=self.cfg.num_clusters).float()
        w = torch.where(lab >= 0, 1.0 / counts[lab.clamp(min=0)].clamp(min=1), torch.zeros(()))
        idx = torch.multinomial(w, len(batch["x"]), replacement=True)           # uniform over clusters
        (x,) = self.views(self.train_set.images[idx], self.view)
        y = lab[idx].to(self.device)
        logits = self.cluster_head(self.backbone(x))
        loss = F.cross_entropy(logits, y)
        self.optimize("model", loss)
        return {"loss": loss.item(), "clusters": float((counts > 0).sum())}
