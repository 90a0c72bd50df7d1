"""PIRL: pretext-invariant representations — an image and its jigsaw-shuffled tiles map to the same point.

Misra & van der Maaten, "Self-supervised learning of pretext-invariant representations", CVPR 2020,
https://arxiv.org/abs/1912.01991. f(v_I): projection of the image's features; g(v_I^t): each of the 9
shuffled tiles encoded and projected, concatenated, projected again (Sec. 3.3). Loss (Eq. 5):
    L = lambda * L_NCE(m_I, g(v_I^t)) + (1 - lambda) * L_NCE(m_I, f(v_I)),  lambda = 0.5,
with m_I the memory-bank entry of image I (momentum 0.5), tau = 0.07 and N = 32000 bank negatives (one set
per step shared by the batch, as in ``npid``: a choice, the reference draws them per sample).
L_NCE is NPID's binary NCE with Z estimated at the first step (``loss=nce``, default) or the InfoNCE over
1 + N candidates (``loss=infonce``). The bank and Z are checkpointed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import param
from ._ssl import MemoryBank, SSLConfig, SSLMethod, gather_all, patch_grid, shared_generator
from .npid import _linear, bank_loss
from ..engine.method import register_method


@dataclass
class PIRLConfig(SSLConfig):
    batch_size: int = param(64, ge=2, help="images per step (each also gives 9 tiles; PIRL: 1024)")
    num_negatives: int = param(32000, ge=1, help="N, negatives drawn from the memory bank")
    temperature: float = param(0.07, gt=0, help="tau")
    lambd: float = param(0.5, ge=0, le=1, help="weight of the image-vs-transformed term")
    bank_momentum: float = param(0.5, ge=0, lt=1, help="memory bank update momentum")
    proj_dim: int = param(128, ge=1, help="embedding dimension")
    head_bn: bool = param(True, help="BatchNorm after the projections f and g (as NPID's head_bn)")
    loss: str = param("nce", choices=("nce", "infonce"), help="binary NCE with constant Z (paper) or InfoNCE")


@register_method
class PIRL(SSLMethod):
    name = "pirl"
    summary = "Jigsaw-invariant representations contrasted against a memory bank"
    paper = "Misra & van der Maaten 2020, Self-supervised learning of pretext-invariant representations"
    Config = PIRLConfig
    trainable = ("backbone", "f_head", "tile_head", "g_head")
    extra_state = ("bank", "log_z")

    def __init__(self, cfg: PIRLConfig):
        super().__init__(cfg)
        d = cfg.proj_dim
        self.f_head = _linear(self.feat_dim, d, cfg.head_bn)
        self.tile_head = nn.Linear(self.feat_dim, d)
        self.g_head = _linear(9 * d, d, cfg.head_bn)
        self.bank = MemoryBank.init(len(self.train_set), d, torch.Generator().manual_seed(cfg.seed))
        self.log_z = torch.tensor(float("nan"), dtype=torch.float64)             # NCE's log Z, set at step 1

    def training_step(self, batch, step):
        c = self.cfg
        (x,) = self.views(batch["x"], self.view)
        b, idx = len(x), batch["i"].to(self.device)
        tiles = patch_grid(x)                                                     # (B, 9, C, H, W)
        order = torch.argsort(torch.rand(b, 9, device=x.device), dim=1)           # a random permutation each
        tiles = tiles[torch.arange(b, device=x.device)[:, None], order]
        feats = self.backbone(torch.cat([x, tiles.flatten(0, 1)], 0))              # (B + 9B, F)
        vi = F.normalize(self.f_head(feats[:b]), dim=1)                           # (B, d)
        vt = F.normalize(self.g_head(self.tile_head(feats[b:]).view(b, -1)), dim=1)  # (B, d)
        m = self.bank[idx].clone()
        neg = MemoryBank.negatives(self.bank, c.num_negatives, shared_generator(c.seed, step))   # same on all ranks
        loss = c.lambd * bank_loss(self, vt, m, neg) + (1 - c.lambd) * bank_loss(self, vi, m, neg)
        self.optimize("model", loss)
        MemoryBank.update(self.bank, gather_all(idx), gather_all(vi.detach()), c.bank_momentum)
        return {"loss": loss.item()}
