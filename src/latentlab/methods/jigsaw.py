"""Jigsaw puzzles: shuffle 3x3 tiles by one of P permutations and classify which permutation it was.

Noroozi & Favaro, "Unsupervised learning of visual representations by solving jigsaw puzzles", ECCV 2016,
https://arxiv.org/abs/1603.09246. The permutation set is chosen greedily as in their Algorithm 1: starting
from a random permutation, each next one maximises its *summed* (mean) Hamming distance to those already
chosen (``selection=mean``); ``selection=min`` maximises the minimum distance instead (a larger guaranteed
gap between classes, not the paper's rule). P = 1000. Tiles are cut from a 3x3 grid with a random gap (a
random crop of 3/4 of each cell), each normalised to zero mean and unit standard deviation on its own
(``tile_norm``, the paper's guard against low-level shortcuts), encoded by the shared encoder (each resized
to its input size), concatenated in tile order, and classified by an MLP.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import param
from ._ssl import SSLConfig, SSLMethod, patch_grid
from ..engine.method import register_method


@lru_cache(maxsize=4)
def _all_perms(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Every permutation (n!, n), and masks[k, v] = (perm[:, k] == v) as uint8 (n, n, n!)."""
    allp = np.array(list(itertools.permutations(range(n))), dtype=np.int8)
    masks = np.stack([np.stack([allp[:, k] == v for v in range(n)]) for k in range(n)]).astype(np.uint8)
    return allp, masks


def maximal_hamming_permutations(count: int, n: int = 9, seed: int = 0, selection: str = "mean") -> torch.Tensor:
    """``count`` permutations of range(n) chosen greedily, (count, n): each next one maximises the summed
    Hamming distance to the chosen set (``mean``, Noroozi & Favaro's Algorithm 1) or the minimum one
    (``min``); ties are broken at random with ``seed``, which also draws the first permutation."""
    if selection not in ("mean", "min"):
        raise ValueError(f"selection must be 'mean' or 'min', got {selection!r}")
    allp, masks = _all_perms(n)
    ks = np.arange(n)
    dist = lambda j: n - masks[ks, allp[j]].sum(0, dtype=np.int16)             # Hamming distance to perm j
    if not 1 <= count <= len(allp):
        raise ValueError(f"count must be in 1..{len(allp)}, got {count}")
    rng = np.random.default_rng(seed)
    chosen = [int(rng.integers(len(allp)))]
    score = dist(chosen[0]).astype(np.int64)                   # (n!,) summed or min distance to the set
    taken = np.zeros(len(allp), bool)
    taken[chosen[0]] = True
    for _ in range(count - 1):
        best = np.flatnonzero((score == score[~taken].max()) & ~taken)
        j = int(best[rng.integers(len(best))])
        chosen.append(j)
        taken[j] = True
        score = score + dist(j) if selection == "mean" else np.minimum(score, dist(j))
    return torch.from_numpy(allp[chosen].astype(np.int64))


def min_hamming(perms: torch.Tensor) -> int:
    """The smallest Hamming distance between two different permutations of the set."""
    d = (perms[:, None, :] != perms[None, :, :]).sum(-1)
    d.fill_diagonal_(perms.shape[1] + 1)
    return int(d.min())


@dataclass
class JigsawConfig(SSLConfig):
    batch_size: int = param(64, ge=2, help="images per step (each gives 9 tiles; the paper: 256)")
    num_permutations: int = param(1000, ge=2, le=362880, help="P, size of the permutation set")
    hidden: int = param(1024, ge=1, help="hidden width of the permutation classifier (the paper: fc7 of 4096)")
    selection: str = param("mean", choices=("mean", "min"), help="permutation set: maximise the summed Hamming "
                           "distance (the paper's Algorithm 1) or the minimum one")
    tile_norm: bool = param(True, help="normalise each tile to zero mean, unit std on its own (the paper)")


@register_method
class Jigsaw(SSLMethod):
    name = "jigsaw"
    summary = "Pretext task: recognise which of P maximal-Hamming permutations shuffled 3x3 tiles"
    paper = "Noroozi & Favaro 2016, Unsupervised learning of visual representations by solving jigsaw puzzles"
    Config = JigsawConfig
    trainable = ("backbone", "perm_head")
    extra_state = ("perms",)

    def __init__(self, cfg: JigsawConfig):
        super().__init__(cfg)
        self.perms = maximal_hamming_permutations(cfg.num_permutations, 9, cfg.seed, cfg.selection)  # (P, 9)
        self.perm_head = nn.Sequential(nn.Linear(9 * self.feat_dim, cfg.hidden), nn.ReLU(inplace=True),
                                       nn.Linear(cfg.hidden, cfg.num_permutations))

    def training_step(self, batch, step):
        (x,) = self.views(batch["x"], self.view)
        tiles = patch_grid(x)                                                    # (B, 9, C, H, W)
        if self.cfg.tile_norm:                                                   # each tile on its own
            mu, sd = tiles.mean((2, 3, 4), keepdim=True), tiles.std((2, 3, 4), keepdim=True)
            tiles = (tiles - mu) / (sd + 1e-5)
        b = len(x)
        label = torch.randint(len(self.perms), (b,), device=x.device)            # (B,)
        shuffled = tiles[torch.arange(b, device=x.device)[:, None], self.perms[label]]  # (B, 9, C, H, W)
        f = self.backbone(shuffled.flatten(0, 1)).view(b, -1)                    # (B, 9F)
        logits = self.perm_head(f)
        loss = F.cross_entropy(logits, label)
        self.optimize("model", loss)
        return {"loss": loss.item(), "perm_acc": (logits.argmax(1) == label).float().mean().item()}
