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
EDGE_THRESHOLD = 0.25
# the paired dataset -> the dataset of its targets (their feature network scores translations)
TARGET_DOMAIN = {"mnist_m_colourise": "mnist_m", "mnist_edges": "mnist", "mnist_m_edges": "mnist_m"}


def grey(rgb: np.ndarray) -> np.ndarray:
    """uint8 (N, 3, H, W) -> uint8 (N, 1, H, W) luma (BT.601), rounded."""
    y = np.tensordot(rgb.astype(np.float64), LUMA, axes=([1], [0]))   # (N, H, W)
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)[:, None]


def mnist_m_colourise(data_dir: Path, split: str, lazy: bool = False) -> dict[str, np.ndarray]:
    x, y = readers.read_mnist_m(Path(data_dir) / "mnist_m" / "mnist_m.tar.gz", split)
    return {"image": grey(x), "target_image": np.ascontiguousarray(x), "label": y}


def edges(images: np.ndarray, threshold: float = EDGE_THRESHOLD) -> np.ndarray:
    """uint8 (N, C, H, W) -> uint8 (N, 1, H, W) binary edge maps (0 / 255): the Sobel gradient magnitude of the
    luma (grey as is), zero-padded at the border, >= ``threshold`` x the image's largest magnitude. A blank
    image has no edges."""
    y = grey(images)[:, 0].astype(np.float64) if images.shape[1] == 3 else images[:, 0].astype(np.float64)
    p = np.pad(y, ((0, 0), (1, 1), (1, 1)))
    gx = (p[:, :-2, 2:] + 2 * p[:, 1:-1, 2:] + p[:, 2:, 2:]) - (p[:, :-2, :-2] + 2 * p[:, 1:-1, :-2] + p[:, 2:, :-2])
    gy = (p[:, 2:, :-2] + 2 * p[:, 2:, 1:-1] + p[:, 2:, 2:]) - (p[:, :-2, :-2] + 2 * p[:, :-2, 1:-1] + p[:, :-2, 2:])
    mag = np.hypot(gx, gy)                                                  # (N, H, W)
    top = mag.reshape(len(mag), -1).max(1)[:, None, None]
    out = (mag >= threshold * top) & (top > 0)
    return (out * 255).astype(np.uint8)[:, None]


def mnist_edges(data_dir: Path, split: str, lazy: bool = False) -> dict[str, np.ndarray]:
    x, y = readers.read_idx_split(Path(data_dir) / "mnist", split)
    return {"image": edges(x), "target_image": np.ascontiguousarray(x), "label": y}


def mnist_m_edges(data_dir: Path, split: str, lazy: bool = False) -> dict[str, np.ndarray]:
    x, y = readers.read_mnist_m(Path(data_dir) / "mnist_m" / "mnist_m.tar.gz", split)
    return {"image": edges(x), "target_image": np.ascontiguousarray(x), "label": y}
