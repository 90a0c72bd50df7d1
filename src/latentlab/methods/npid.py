"""NPID: non-parametric instance discrimination with a memory bank of every image's representation.

Wu et al., "Unsupervised feature learning via non-parametric instance discrimination", CVPR 2018,
https://arxiv.org/abs/1805.01978. 128-d L2-normalised features, tau = 0.07, bank momentum 0.5 (the
reference code's; the paper replaces the entry and adds a proximal term), K = 4096 negatives per step.
The softmax over all n instances is approximated as in the paper (Sec. 3.2) by NCE against K noise
samples from the bank, with the normaliser Z estimated once, at the first step, by Monte Carlo and then
kept constant (``loss=nce``, the default); ``loss=infonce`` uses the same K samples as the
negatives of an InfoNCE (softmax over 1 + K), the course's "memory bank" answer to "more negatives is
better but hard". The bank and Z are checkpointed.
BN after the projection (``head_bn``): on the ConvNet's post-ReLU features a plain linear projection
starts with all embeddings nearly parallel (cosine 0.99) and short runs collapse (as for MoCo).
``bank_init=encoder`` (not the paper's: it starts from random unit vectors) fills the bank at the first
step with the untrained encoder's embeddings of the un-augmented train images, so that the positives are
real embeddings from the start; the fill runs inside the first step, so it counts in a time budget.
A choice, not the paper's: one set of K negatives is drawn per step and shared by the whole batch (the
reference code draws K per sample; at batch 256, K = 4096 and 128-d that is 0.5 GB of gathered rows a
step on a CPU). Each sample's estimate is unbiased either way; the batch's losses are correlated.
Under a short budget most images are never revisited and every positive is a random vector otherwise
(docs/ssl.md, ``benchmarks/ssl_npid.py``). Under DDP every process fills the whole bank from the same weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import param
from ..losses import info_nce, nce_log_normaliser, nce_loss
from ._ssl import MemoryBank, SSLConfig, SSLMethod, gather_all, shared_generator
from ..engine.method import register_method
from ..modules import unwrap


def bank_loss(method, query, positive, negatives) -> torch.Tensor:
    """NPID/PIRL's loss against bank samples: NCE (Z estimated at the first step, then fixed) or InfoNCE."""
    c = method.cfg
    if c.loss == "infonce":
        return info_nce(query, positive, negatives, c.temperature)
    n = len(method.bank)
    if not torch.isfinite(method.log_z):       # first step: log Z = log(n E[exp(s / tau)]), E over all processes
        est = gather_all(torch.tensor([nce_log_normaliser(query, positive, negatives, n, c.temperature)],
                                      dtype=torch.float64, device=query.device))          # (W,) equal batches
        method.log_z.fill_((torch.logsumexp(est, 0) - math.log(len(est))).item())
    return nce_loss(query, positive, negatives, n, method.log_z.item(), c.temperature)


def _linear(d_in: int, d_out: int, bn: bool) -> nn.Module:
    return nn.Sequential(nn.Linear(d_in, d_out), nn.BatchNorm1d(d_out)) if bn else nn.Linear(d_in, d_out)


@dataclass
class NPIDConfig(SSLConfig):
    num_negatives: int = param(4096, ge=1, help="K, negatives drawn from the memory bank per step")
    temperature: float = param(0.07, gt=0, help="tau")
    bank_momentum: float = param(0.5, ge=0, lt=1, help="memory bank update momentum")
    proj_dim: int = param(128, ge=1, help="embedding dimension stored in the bank")
    head_bn: bool = param(True, help="BatchNorm after the linear projection (see docstring)")
    loss: str = param("nce", choices=("nce", "infonce"), help="binary NCE with constant Z (paper) or InfoNCE")
    bank_init: str = param("random", choices=("random", "encoder"),
                           help="bank rows at the start: random unit vectors (paper) or the untrained encoder's "
                                "embeddings, filled at the first step (see docstring)")


@register_method
class NPID(SSLMethod):
    name = "npid"
    summary = "Instance discrimination against a memory bank of K negatives"
    paper = "Wu et al. 2018, Unsupervised feature learning via non-parametric instance discrimination"
    Config = NPIDConfig
    trainable = ("backbone", "projector")
    extra_state = ("bank", "log_z")

    def __init__(self, cfg: NPIDConfig):
        super().__init__(cfg)
        self.projector = _linear(self.feat_dim, cfg.proj_dim, cfg.head_bn)
        self.bank = MemoryBank.init(len(self.train_set), cfg.proj_dim, torch.Generator().manual_seed(cfg.seed))
        self.log_z = torch.tensor(float("nan"), dtype=torch.float64)             # NCE's log Z, set at step 1

    @torch.no_grad()
    def fill_bank(self) -> None:
        """Every bank row <- the current encoder's embedding of its un-augmented train image, in chunks of
        batch_size with BatchNorm in training mode (as in a step); running statistics are left unchanged.
        Every process fills the whole bank from the same weights, so the banks agree."""
        mods = [unwrap(self.backbone), unwrap(self.projector)]
        saved = [{k: b.clone() for k, b in m.named_buffers()} for m in mods]
        bs = self.cfg.batch_size
        for i in range(0, len(self.bank), bs):
            x = self.prepare_eval(self.train_set.images[i:i + bs])
            self.bank[i:i + bs] = F.normalize(self.projector(self.backbone(x)), dim=1).to(self.bank)
        for m, buf in zip(mods, saved):
            for k, b in m.named_buffers():
                b.copy_(buf[k])

    def training_step(self, batch, step):
        c = self.cfg
        if c.bank_init == "encoder" and step == 0:
            self.fill_bank()
        (x,) = self.views(batch["x"], self.view)
        idx = batch["i"].to(self.device)
        v = F.normalize(self.projector(self.backbone(x)), dim=1)                # (B, D)
        negatives = MemoryBank.negatives(self.bank, c.num_negatives, shared_generator(c.seed, step))  # (K, D)
        loss = bank_loss(self, v, self.bank[idx].clone(), negatives)
        self.optimize("model", loss)
        MemoryBank.update(self.bank, gather_all(idx), gather_all(v.detach()), c.bank_momentum)
        return {"loss": loss.item()}
