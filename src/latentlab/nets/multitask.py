"""A shared trunk with one tail and head per task, split at a chosen layer (hard parameter sharing).

The trunk is the LeNet of Sener & Koltun's MultiMNIST code (``multi_lenet.py``): conv 5x5 (``width``) ->
max-pool -> ReLU -> conv 5x5 (2 ``width``) -> Dropout2d -> max-pool -> ReLU -> FC (``num_features``) -> ReLU;
each task's head is FC (F -> F) -> ReLU -> Dropout -> FC (F -> outputs), their ``MultiLeNetO``. Their defaults:
width 10, F 50, dropout 0.5 (their masks are shared across a batch; here they are drawn per sample).

``split`` says where the tasks part (Standley et al., ICML 2020, place the split as a design choice):
``fc`` shares the whole trunk (the paper's layout), ``conv2`` shares both convolutions and gives every task its
own FC, ``conv1`` only the first convolution, ``none`` nothing (separate networks, trained side by side).
Image targets (denoising, edges) get a small decoder as their head instead: FC -> (2 width, s, s) -> two
(upsample x2, conv 3x3) stages, at the input's size, linear (no sigmoid: under the L1 loss a
sigmoid output saturated at black and stopped learning; the metric clamps to [0, 1]).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..modules import reinitialise
from .registry import register

SPLITS = ("none", "conv1", "conv2", "fc")


class ImageHead(nn.Module):
    def __init__(self, num_features: int, out_chans: int, img_size: int, width: int):
        super().__init__()
        self.s, self.c = -(-img_size // 4), 2 * width
        self.fc = nn.Linear(num_features, self.c * self.s * self.s)
        self.dec = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(self.c, width, 3, padding=1), nn.ReLU(),
                                 nn.Upsample(scale_factor=2), nn.Conv2d(width, out_chans, 3, padding=1))
        self.img_size = img_size

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.fc(f)).view(len(f), self.c, self.s, self.s)      # (B, 2w, s, s)
        return self.dec(x)[..., :self.img_size, :self.img_size]               # (B, C, H, W), linear


class MultiTaskNet(nn.Module):
    def __init__(self, tasks: dict[str, int | tuple[int, int, int]], in_chans: int = 1, img_size: int = 28,
                 split: str = "fc", width: int = 10, num_features: int = 50, dropout: float = 0.5):
        """``tasks``: name -> number of outputs, or (C, H, W) for an image target."""
        super().__init__()
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if not tasks:
            raise ValueError("MultiTaskNet needs at least one task")
        self.tasks, self.split, self.num_features = list(tasks), split, num_features
        self.in_chans, self.img_size = in_chans, img_size
        s = ((img_size - 4) // 2 - 4) // 2                                    # two valid 5x5 convs, two pools
        if s < 1:
            raise ValueError(f"MultiTaskNet needs img_size >= 16, got {img_size}")
        stages = [nn.Sequential(nn.Conv2d(in_chans, width, 5), nn.MaxPool2d(2), nn.ReLU()),      # (B, w, ., .)
                  nn.Sequential(nn.Conv2d(width, 2 * width, 5), nn.Dropout2d(dropout), nn.MaxPool2d(2),
                                nn.ReLU()),                                                  # (B, 2w, s, s)
                  nn.Sequential(nn.Flatten(), nn.Linear(2 * width * s * s, num_features), nn.ReLU())]  # (B, F)
        cut = SPLITS.index(split)                                             # stages shared: the first `cut`
        self.shared = nn.Sequential(*stages[:cut])
        self.tails = nn.ModuleDict({t: nn.Sequential(*copy.deepcopy(stages[cut:])) for t in tasks})
        for tail in self.tails.values():                                      # each copy its own initialisation
            reinitialise(tail)

        def head(out):
            if isinstance(out, (tuple, list)):
                return ImageHead(num_features, out[0], img_size, width)
            return nn.Sequential(nn.Linear(num_features, num_features), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(num_features, out))
        self.heads = nn.ModuleDict({t: head(o) for t, o in tasks.items()})

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.shared.parameters())

    def last_shared_layer(self) -> nn.Module | None:
        """The last layer with weights that every task uses (GradNorm's W), or None when nothing is shared."""
        layers = [m for m in self.shared.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        return layers[-1] if layers else None

    def forward_shared(self, x: torch.Tensor) -> torch.Tensor:
        return self.shared(x)                                                 # z: (B, ...) at the split

    def forward_tasks(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        return {t: self.heads[t](self.tails[t](z)) for t in self.tasks}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.forward_tasks(self.forward_shared(x))

    def forward_features(self, x: torch.Tensor, task: str | None = None) -> torch.Tensor:
        """The features (B, F) the head of ``task`` (default: the first) reads: the representation."""
        return self.tails[task or self.tasks[0]](self.shared(x))


@register("multitask_lenet", kind="multitask",
          example=lambda: (dict(tasks={"a": 10, "b": 3, "c": (1, 28, 28)}, split="conv2"),
                           (torch.randn(2, 1, 28, 28),)))
def multitask_lenet(**kw) -> MultiTaskNet:
    return MultiTaskNet(**kw)


class TaskWeights(nn.Module):
    """A learned vector of one value per task (uncertainty weighting's s_i = log sigma_i^2, GradNorm's w_i);
    ``forward(x)`` scales the columns of a (B, T) tensor of task values by it."""

    def __init__(self, n: int, init: float = 0.0):
        super().__init__()
        self.weight = nn.Parameter(torch.full((n,), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight


@register("task_weights", kind="multitask", example=lambda: (dict(n=3, init=1.0), (torch.randn(2, 3),)))
def task_weights(**kw) -> TaskWeights:
    return TaskWeights(**kw)
