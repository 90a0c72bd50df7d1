"""Stacked-MNIST: three MNIST digits as the R, G, B channels, 10^3 = 1,000 modes.

Metz et al., "Unrolled GANs", ICLR 2017; Srivastava et al., "VEEGAN", NeurIPS 2017; Lin et al.,
"PacGAN", NeurIPS 2018. Built deterministically from MNIST: sample i stacks digits (a_i, b_i, c_i)
drawn with a seeded generator from the same MNIST split; label = 100 * y_a + 10 * y_b + y_c.
"""

from __future__ import annotations

from pathlib import Path

import torch

SIZES = {"train": 60_000, "test": 10_000}
SEED = 2017


def stacked_mnist(split: str = "train", data_dir: str | Path | None = None, n: int | None = None,
                  seed: int = SEED):
    """ImageDataset of ``n`` (default: the MNIST split's size) 3x28x28 uint8 images with 1,000 classes."""
    from .datasets import ImageDataset, load_dataset
    base = load_dataset("mnist", split, data_dir)
    n = SIZES[split] if n is None else n
    g = torch.Generator().manual_seed(seed + (0 if split == "train" else 1))
    idx = torch.randint(len(base), (n, 3), generator=g)                 # (n, 3) digit indices
    images = base.images[idx].squeeze(2)                                # (n, 3, 28, 28)
    y = base.labels[idx]                                                # (n, 3)
    labels = 100 * y[:, 0] + 10 * y[:, 1] + y[:, 2]
    return ImageDataset("stacked_mnist", split, images, labels, [f"{i:03d}" for i in range(1000)])
