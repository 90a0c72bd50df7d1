"""MoCo v2: a momentum key encoder and a queue of K negative keys, with the InfoNCE loss.

He et al., "Momentum contrast for unsupervised visual representation learning", CVPR 2020;
Chen et al., "Improved baselines with momentum contrastive learning" (v2: MLP head, tau = 0.2, blur),
https://arxiv.org/abs/2003.04297. Defaults: K = 65536, m = 0.999, tau = 0.2, 2048-d MLP head to 128.
The queue and its pointer are checkpointed (exact resume). One change: BatchNorm in the MLP head
(as in MoCo v3; ``head_bn=false`` gives v2's plain head). On the ConvNet's post-ReLU features, which
share a large common component, v2's plain head starts with all queries nearly parallel (cosine
0.9997) and short runs collapse (tests/test_ssl_methods.py shows it); BN centres them. BN statistics
span the whole batch (across processes too: global BN, as MoCo v3). ``shuffle_bn=G`` is v1/v2's
shuffling BN (Sec. 3.3): queries and keys are encoded in G groups, each with its own BN statistics, and
the keys of the whole batch are shuffled first, so a query and its positive key are normalised with
statistics of different images (v2's 8 GPUs: ``shuffle_bn=8``). One process emulates the G groups;
under DDP each of the W processes encodes G / W groups, the key shuffle spans every process (one
permutation per step, the same on all ranks), and the result equals one process with G groups.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..config import param, require
from ..losses import info_nce
from ..nets.heads import ProjectionHead
from ..nets.ema import ema_update
from ._ssl import SSLConfig, SSLMethod, frozen_copy, gather_all, shared_generator
from ..engine.method import register_method


@dataclass
class MoCoConfig(SSLConfig):
    queue_size: int = param(65536, ge=1, help="K, the number of negative keys in the queue")
    momentum: float = param(0.999, ge=0, le=1, help="key encoder momentum m")
    temperature: float = param(0.2, gt=0, help="InfoNCE temperature tau (v2)")
    proj_hidden: int = param(2048, ge=1, help="MLP head hidden width (v2)")
    proj_dim: int = param(128, ge=1, help="key/query dimension")
    head_bn: bool = param(True, help="BatchNorm in the MLP head (v3; v2 has none, see the docstring)")
    shuffle_bn: int = param(1, ge=1, help="groups of shuffling BN (1: BN over the whole batch; see the docstring)")

    def check(self):
        super().check()
        require(self.batch_size % self.shuffle_bn == 0, "shuffle_bn", self.shuffle_bn,
                f"must divide batch_size={self.batch_size}")
        require(self.shuffle_bn == 1 or self.shuffle_bn % self.devices == 0, "shuffle_bn", self.shuffle_bn,
                f"must be a multiple of devices={self.devices} (each process encodes shuffle_bn / devices groups)")


@register_method
class MoCo(SSLMethod):
    name = "moco"
    summary = "MoCo v2: momentum key encoder + queue of K negatives, InfoNCE"
    paper = "He et al. 2020 / Chen et al. 2020, Momentum contrast (v2)"
    Config = MoCoConfig
    trainable = ("backbone", "projector")
    extra_state = ("queue", "queue_ptr")

    def __init__(self, cfg: MoCoConfig):
        super().__init__(cfg)
        self.projector = ProjectionHead(self.feat_dim, (cfg.proj_hidden,), cfg.proj_dim, bn=cfg.head_bn)
        self.key_backbone, self.key_projector = frozen_copy(self.backbone), frozen_copy(self.projector)
        g = torch.Generator().manual_seed(cfg.seed)
        self.queue = F.normalize(torch.randn(cfg.queue_size, cfg.proj_dim, generator=g), dim=1)  # (K, D)
        self.queue_ptr = torch.zeros((), dtype=torch.long)
        self.global_bn = cfg.shuffle_bn == 1          # shuffling BN keeps each group's statistics local

    def training_step(self, batch, step):
        xq, xk = self.views(batch["x"])
        g = self.cfg.shuffle_bn // self.fabric.world_size if self.cfg.shuffle_bn > 1 else 1  # groups here
        q = F.normalize(self.grouped(self.projector, self.backbone, xq, g), dim=1)   # (B, D)
        with torch.no_grad():
            ema_update(self.key_backbone, self.backbone, self.cfg.momentum)
            ema_update(self.key_projector, self.projector, self.cfg.momentum)
            k = F.normalize(self.shuffled_keys(xk, g, step), dim=1)                  # (B, D)
        loss = info_nce(q, k, self.queue.clone(), self.cfg.temperature)
        self.optimize("model", loss)
        self._enqueue(gather_all(k))
        return {"loss": loss.item()}

    def shuffled_keys(self, xk: torch.Tensor, groups: int, step: int) -> torch.Tensor:
        """Keys of this process's views (B, D), encoded in ``groups`` groups drawn from a shuffle of the
        views of every process (MoCo Sec. 3.3: gather, shuffle, encode, gather, unshuffle)."""
        if self.cfg.shuffle_bn == 1:
            return self.key_projector(self.key_backbone(xk))
        rank, world = self.fabric.global_rank, self.fabric.world_size
        x_all = gather_all(xk)                                                       # (W*B, C, H, W)
        perm = torch.randperm(len(x_all), generator=shared_generator(self.cfg.seed, step)).to(xk.device)
        mine = perm.view(world, -1)[rank]                                            # views this rank encodes
        k_all = gather_all(self.grouped(self.key_projector, self.key_backbone, x_all[mine], groups))
        k_all = torch.empty_like(k_all).index_copy_(0, perm, k_all)                  # unshuffle
        return k_all.view(world, len(xk), -1)[rank]                                  # this rank's queries' keys

    @staticmethod
    def grouped(head, encoder, x: torch.Tensor, groups: int) -> torch.Tensor:
        """head(encoder(x)) with BatchNorm statistics computed separately on each of ``groups`` chunks."""
        if groups == 1:
            return head(encoder(x))
        return torch.cat([head(encoder(c)) for c in x.chunk(groups)], 0)

    @torch.no_grad()
    def _enqueue(self, k: torch.Tensor) -> None:
        n, size = len(k), len(self.queue)
        idx = (self.queue_ptr + torch.arange(n, device=k.device)) % size
        self.queue[idx[-size:]] = k[-size:]
        self.queue_ptr.fill_(int((self.queue_ptr + n) % size))
