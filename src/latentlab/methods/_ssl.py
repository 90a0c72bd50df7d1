"""Shared plumbing of the self-supervised methods (one module, no per-method copies).

- ``SSLConfig``: the keys every self-supervised method has (backbone, augmentation, k-NN monitor).
- ``SSLMethod``: loads train (minus a validation split) and test data, builds the backbone, streams
  ``{"x": uint8, "y": labels, "i": sample index}``, makes augmented views, runs the online k-NN monitor,
  and evaluates with the generic k-NN protocol. Methods add their heads, losses and updates.
- ``cosine_momentum``: the momentum schedule of the BYOL and DINO teachers (``nets.ema.ema_update``).
- ``MemoryBank``: helpers for the (N, D) bank of NPID and PIRL, a checkpointed tensor.
- ``patch_grid``: the 3x3 tiles used by jigsaw, context prediction and PIRL.

Optimiser: Adam (lr 1e-3) for every method, not the papers' LARS/SGD with batches of 256-4096 on
8-512 accelerators: on a CPU budget of minutes Adam is the one that trains all of them comparably.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .. import nets
from ..config import TrainConfig, param, require
from ..data import augment as aug
from ..data import load_dataset
from ..data.randbit import image_bits, with_bits
from ..distributed import world_size
from ..engine.batches import ShuffledBatches
from ..engine.method import Method
from ..modules import unwrap
from ..results import EvalResult


@dataclass
class SSLConfig(TrainConfig):
    dataset: str = param("mnist", help="dataset name or path")
    steps: int = param(2000, ge=1, help="training steps, for a CPU budget (the papers train 100-1000 epochs)")
    batch_size: int = param(256, ge=2, help="images per step (NPID, MoCo v2, DeepCluster: 256; RotNet: 128; "
                                            "SimCLR, BYOL: 4096; Barlow Twins: 2048)")
    lr: float = param(1e-3, gt=0, help="Adam learning rate")
    weight_decay: float = param(1e-6, ge=0, help="Adam weight decay (SimCLR's 1e-6; MoCo 1e-4, NPID and RotNet "
                                                 "5e-4, BYOL and Barlow Twins 1.5e-6, DINO 0.04-0.4, all with "
                                                 "SGD/LARS/AdamW)")
    net: str = param("convnet", help="backbone from the nets registry (convnet, resnet18, ...)")
    width: int = param(32, ge=1, help="backbone width (channels of the first conv)")
    num_features: int = param(128, ge=1, help="representation dimension (convnet)")
    augment: str = param("digits", choices=aug.PIPELINES,
                         help="view pipeline: digits (no flip, milder crops), simclr (the paper's), none")
    val_fraction: float = param(0.1, ge=0, lt=1, help="part of train held out for validation (probes)")
    knn_every: int = param(500, ge=0, help="steps between online k-NN monitor evaluations (0: off)")
    knn_samples: int = param(2000, ge=10, help="train images in the online k-NN monitor bank")
    log_every: int = param(50, ge=1)
    image_every: int = param(0, ge=0)

    def check(self):
        require(self.net in nets.list_nets("backbone"), "net", self.net, f"not one of {nets.list_nets('backbone')}")


class SSLMethod(Method):
    protocols = ("linear", "knn", "retrieval")
    Config = SSLConfig

    def __init__(self, cfg: SSLConfig):
        super().__init__(cfg)
        full = load_dataset(cfg.dataset, "train", cfg.data_dir)
        self.train_set, self.val_set = full.train_val(cfg.val_fraction, cfg.seed)
        self.test_set = load_dataset(cfg.dataset, "test", cfg.data_dir)
        self.img_shape = full.shape                                           # (C, H, W)
        self.backbone = self.make_backbone()
        self.view = aug.build(cfg.augment, self.img_shape[1:], self.img_shape[0])

    def make_backbone(self) -> nn.Module:
        c, h, _ = self.img_shape
        return nets.create(self.cfg.net, in_chans=c + self.randbit, img_size=h, num_classes=0,
                           width=self.cfg.width, num_features=self.cfg.num_features)

    @property
    def randbit(self) -> int:
        """RandBit channels (``data/randbit.py``) for methods whose config has ``randbit``; else 0."""
        return getattr(self.cfg, "randbit", 0)

    @property
    def feat_dim(self) -> int:
        return unwrap(self.backbone).num_features

    # -- data -----------------------------------------------------------------------------------
    def batches(self, rank, world):
        ds = self.train_set
        return ShuffledBatches({"x": ds.images, "y": ds.labels, "i": torch.arange(len(ds))},
                               self.cfg.batch_size, self.cfg.seed, rank, world)

    def views(self, x_uint8: torch.Tensor, *pipes: nn.Module) -> list[torch.Tensor]:
        """One augmented float view per pipeline (default: two views through ``self.view``); with
        ``randbit=n`` every view of an image gets the same n bit channels after augmentation."""
        x = self.prepare_images(x_uint8)
        views = [aug.apply(p, x) for p in (pipes or (self.view, self.view))]
        if not self.randbit:
            return views
        bits = image_bits(x_uint8, self.randbit)                               # (B, n)
        return [self._with_bits(v, bits) for v in views]

    def prepare_eval(self, x: torch.Tensor) -> torch.Tensor:
        x_eval = super().prepare_eval(x)
        return self._with_bits(x_eval, image_bits(x, self.randbit)) if self.randbit else x_eval

    def _with_bits(self, x: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:   # (B, C + n, H, W)
        x = with_bits(x, bits)
        return x.contiguous(memory_format=torch.channels_last) if self.cfg.channels_last else x

    def configure_optimizers(self):
        params = [p for n in self.trainable for p in getattr(self, n).parameters() if p.requires_grad]
        return {"model": torch.optim.Adam(params, lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)}

    def encoder(self) -> nn.Module:
        return self.backbone

    # -- monitoring and evaluation ---------------------------------------------------------------
    def monitors(self):
        return {"knn": (self.cfg.knn_every if len(self.val_set) else 0, self.online_knn)}

    def online_knn(self) -> dict[str, float]:
        """Online k-NN accuracy (k=20, T=0.07) on small fixed subsets (every ``knn_every`` steps)."""
        c = self.cfg
        from ..eval.representation import extract, knn_predict
        enc = unwrap(self.backbone)
        n = min(c.knn_samples, len(self.train_set))
        m = min(max(c.knn_samples // 2, 1), len(self.val_set))
        ftr = extract(enc, self.train_set.images[:n], self.prepare_eval)
        fva = extract(enc, self.val_set.images[:m], self.prepare_eval)
        pred = knn_predict(ftr, self.train_set.labels[:n], fva, self.train_set.num_classes)
        return {"knn_acc": (pred == self.val_set.labels[:m]).float().mean().item()}

    def evaluate(self, protocol=None) -> EvalResult:
        from ..eval.representation import knn, linear
        return linear(self) if protocol == "linear" else knn(self)

    def images(self):
        x, c = self.train_set.images[:8], self.img_shape[0]
        return {"views": torch.cat([self.prepare_images(x).float(), *(v[:, :c] for v in self.views(x))], 0).cpu()}


# -- momentum teachers --------------------------------------------------------------------------
def cosine_momentum(base: float, step: int, total: int) -> float:
    """BYOL Sec. 3.3 / DINO: tau = 1 - (1 - tau_base) (cos(pi k / K) + 1) / 2, rising to 1."""
    return 1 - (1 - base) * (math.cos(math.pi * min(step, total) / max(total, 1)) + 1) / 2


def frozen_copy(module: nn.Module) -> nn.Module:
    import copy
    t = copy.deepcopy(unwrap(module))
    for p in t.parameters():
        p.requires_grad_(False)
    return t


# -- memory bank ----------------------------------------------------------------------------------
class MemoryBank:
    """An (N, D) bank of L2-normalised representations, one row per training image (Wu et al. 2018)."""

    @staticmethod
    def init(n: int, dim: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return F.normalize(torch.randn(n, dim, generator=generator), dim=1)

    @staticmethod
    @torch.no_grad()
    def update(bank: torch.Tensor, idx: torch.Tensor, v: torch.Tensor, momentum: float = 0.5) -> None:
        """bank[idx] <- normalise(m * bank[idx] + (1 - m) * v)  (NPID's reference code, m = 0.5; the paper
        replaces the entry and adds a proximal term; PIRL Sec. 3.2)."""
        bank[idx] = F.normalize(momentum * bank[idx] + (1 - momentum) * F.normalize(v.detach(), dim=1), dim=1)

    @staticmethod
    def negatives(bank: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """K rows drawn uniformly (with replacement) from the bank: (K, D)."""
        return bank[torch.randint(len(bank), (k,), generator=generator).to(bank.device)]


def shared_generator(seed: int, step: int) -> torch.Generator:
    """A CPU generator that is the same on every process at this step. Draws that must agree across
    processes (MoCo's key shuffle, the bank's negatives) come from it, so W processes equal one, and
    resume is exact without saving it."""
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def gather_all(x: torch.Tensor) -> torch.Tensor:
    """Concatenate a tensor from every process (no gradient) — for queue/bank updates under DDP."""
    import torch.distributed as dist
    w = world_size()
    if w == 1:
        return x
    out = [torch.empty_like(x) for _ in range(w)]
    dist.all_gather(out, x.contiguous())
    return torch.cat(out, 0)


# -- patches ----------------------------------------------------------------------------------------
def patch_grid(x: torch.Tensor, grid: int = 3, jitter: bool = True) -> torch.Tensor:
    """Cut (B, C, H, W) into grid x grid tiles with a random crop of 3/4 of each cell (a gap
    against edge shortcuts, after Noroozi & Favaro's 64 px tiles in 75 px cells and Doersch et al.'s gap of
    half a patch; neither uses 3/4), each resized back to (H, W) for the
    shared encoder: (B, grid*grid, C, H, W), tiles in row-major order."""
    b, c, h, w = x.shape
    ch, cw = h // grid, w // grid
    th = (3 * ch) // 4 if ch >= 4 else ch                   # tiny images (8x8 digits): no gap
    tw = (3 * cw) // 4 if cw >= 4 else cw
    tiles = []
    for r in range(grid):
        for q in range(grid):
            if jitter:
                oy, ox = (torch.randint(0, ch - th + 1, (1,)).item(), torch.randint(0, cw - tw + 1, (1,)).item())
            else:
                oy, ox = (ch - th) // 2, (cw - tw) // 2
            t = x[:, :, r * ch + oy:r * ch + oy + th, q * cw + ox:q * cw + ox + tw]
            tiles.append(F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False))
    return torch.stack(tiles, 1)
