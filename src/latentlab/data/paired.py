"""Paired image-to-image datasets (input ``image`` -> ``target_image``), made from the real datasets, seeded
where random, so a pair is always the same.

- ``mnist_m_colourise``: the grey version of each MNIST-M image (ITU-R BT.601 luma, Y = 0.299 R + 0.587 G +
  0.114 B, rounded to 8 bits) as input, the colour image as target; the digit's class as ``label``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from latentlab.data import readers

PAIRED = {"image": "uint8 (C, H, W) input", "target_image": "uint8 (C', H, W) target", "label": "int64 class"}
LUMA = np.array([0.299, 0.587, 0.114])


def grey(rgb: np.ndarray) -> np.ndarray:
    """uint8 (N, 3, H, W) -> uint8 (N, 1, H, W) luma (BT.601), rounded."""
    y = np.tensordot(rgb.astype(np.float64), LUMA, axes=([1], [0]))   # (N, H, W)
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)[:, None]


def mnist_m_colourise(data_dir: Path, split: str, lazy: bool = False) -> dict[str, np.ndarray]:
    x, y = readers.read_mnist_m(Path(data_dir) / "mnist_m" / "mnist_m.tar.gz", split)
    return {"image": grey(x), "target_image": np.ascontiguousarray(x), "label": y}
