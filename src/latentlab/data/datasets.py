"""In-memory labelled image datasets and `load_dataset`, the one entry point to all readers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from latentlab.errors import DataError
from latentlab.data import readers
from latentlab.data.registry import DATASETS, resolve_data_dir

SPLITS = ("train", "test")


@dataclass
class ImageDataset:
    name: str
    split: str
    images: torch.Tensor  # (N, C, H, W) uint8, contiguous
    labels: torch.Tensor  # (N,) int64
    classes: list[str]

    def __post_init__(self):
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.dtype != torch.int64 or self.labels.shape != (len(self.images),):
            raise ValueError(f"labels must be int64 (N,), got {self.labels.dtype} {tuple(self.labels.shape)}")
        self.images = self.images.contiguous()

    def __len__(self) -> int:
        return self.labels.shape[0]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i], self.labels[i]

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # (C, H, W)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def train_val(self, val_fraction: float, seed: int) -> tuple[ImageDataset, ImageDataset]:
        """This split cut into (train, validation) parts by ``split_train_val`` (model selection never
        looks at test)."""
        tr, va = split_train_val(len(self), val_fraction, seed)
        return self.subset(tr), self.subset(va)

    def subset(self, indices) -> ImageDataset:
        """A copy holding only `indices` (int sequence/tensor, or a bool mask)."""
        idx = torch.as_tensor(indices if not isinstance(indices, range) else list(indices))
        idx = idx if idx.dtype == torch.bool else idx.long()
        return ImageDataset(self.name, self.split, self.images[idx], self.labels[idx], list(self.classes))


def split_train_val(n: int, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed seeded split of ``range(n)`` into train and validation indices."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(10_000 + seed))
    n_val = int(round(n * val_fraction))
    return perm[n_val:], perm[:n_val]


def _tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.require(a, requirements=["C", "W"]))  # writable, contiguous


def load_dataset(name: str, split: str = "train", data_dir: str | Path | None = None) -> ImageDataset:
    """A registered dataset (see DATASETS) read from <data_dir>/<name>/, or a directory path holding
    either the four MNIST-layout idx files or one sub-folder of images per class."""
    if split not in SPLITS:
        raise DataError(f"{name}: unknown split {split!r} (expected one of {', '.join(SPLITS)})")
    name = str(name)
    if name == "stacked_mnist":  # generated from mnist (data/stacked.py)
        from latentlab.data.stacked import stacked_mnist
        return stacked_mnist(split, data_dir)
    if name in DATASETS:
        spec, root = DATASETS[name], resolve_data_dir(data_dir) / name
        try:
            if name == "digits":
                x, y = readers.read_digits(split)
            elif name == "mnist":
                x, y = readers.read_idx_split(root, split)
            elif name == "usps":
                x, y = readers.read_usps_h5(root / "usps.h5", split)
            elif name == "mnist_m":
                x, y = readers.read_mnist_m(root / "mnist_m.tar.gz", split)
            else:  # pragma: no cover - a spec without a reader
                raise DataError(f"{name}: no reader registered")
        except readers.MissingFileError as e:
            raise DataError(f"{e} (run `latentlab data fetch {name}`, or set data_dir=DIR or "
                            f"$LATENTLAB_DATA to a folder holding {name}/)") from None
        if x.shape[1:] != spec.shape:
            raise DataError(f"{root}: images have shape {x.shape[1:]}, expected {spec.shape}")
        classes = list(spec.classes)
    elif Path(name).expanduser().is_dir():
        root = Path(name).expanduser()
        if readers.has_idx(root):
            x, y = readers.read_idx_split(root, split, num_classes=None)
            classes = [str(i) for i in range(max(10, int(y.max(initial=0)) + 1))]
        else:
            x, y, classes = readers.read_image_folder(root, split)
        name = root.resolve().name
    else:
        from latentlab.data.synthetic import DISTRIBUTIONS

        hint = (" (a synthetic 1-D/2-D distribution of points, not images: for gan1d and gan2d only)"
                if name in DISTRIBUTIONS else "")
        raise DataError(f"{name}: unknown dataset{hint}; known: {', '.join(DATASETS)}, "
                        "or a directory of MNIST idx files or of class sub-folders")
    return ImageDataset(name, split, _tensor(x), _tensor(y), classes)
