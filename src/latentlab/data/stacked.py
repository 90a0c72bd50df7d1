"""Stacked-MNIST: three MNIST digits as the R, G, B channels, 10^3 = 1,000 modes.

Metz et al., "Unrolled GANs", ICLR 2017; Srivastava et al., "VEEGAN", NeurIPS 2017; Lin et al.,
"PacGAN", NeurIPS 2018. Built deterministically from MNIST: sample i stacks digits (a_i, b_i, c_i)
drawn with a seeded generator from the same MNIST split; label = 100 * y_a + 10 * y_b + y_c.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from latentlab.data import readers

SIZES = {"train": 60_000, "test": 10_000}
SEED = 2017


def load(data_dir: Path, split: str, lazy: bool = False, n: int | None = None,
         seed: int = SEED) -> dict[str, np.ndarray]:
    """``n`` (default: the MNIST split's size) 3x28x28 uint8 images with 1,000 classes, from <data_dir>/mnist."""
    x, y = readers.read_idx_split(Path(data_dir) / "mnist", split)
    n = SIZES[split] if n is None else n
    g = torch.Generator().manual_seed(seed + (0 if split == "train" else 1))
    idx = torch.randint(len(x), (n, 3), generator=g).numpy()          # (n, 3) digit indices
    images = x[idx][:, :, 0]                                           # (n, 3, 28, 28)
    d = y[idx]                                                         # (n, 3)
    return {"image": np.ascontiguousarray(images), "label": (100 * d[:, 0] + 10 * d[:, 1] + d[:, 2]).astype(np.int64)}
