"""Datasets of named fields and `load_dataset`, the one entry point to every reader.

A dataset is a set of aligned fields, one row per example: ``image`` (uint8 (N, C, H, W)) always, and any of
``label`` (int64 class), ``target_image`` (uint8, a paired image: Pix2Pix-style data), ``angle``,
``keypoints``, ``visibility``, ``domain`` ... Its registry entry (``data/registry.py``) says which fields exist
and carries the loader that makes them, so there is no dispatch on names here. Fields are tensors in memory,
or ``MappedArray`` rows read from a memory-mapped cache on demand (``load_dataset(..., lazy=True)``) behind
the same indexing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from latentlab.data import readers
from latentlab.data.paths import resolve_data_dir
from latentlab.data.registry import DATASETS
from latentlab.errors import DataError

SPLITS = ("train", "test")


class MappedArray:
    """Rows of a (possibly memory-mapped) numpy array, read on indexing: ``a[idx]`` -> a torch tensor copy.
    Has the ``shape``, ``dtype``, ``len`` and indexing the streams and protocols use on a tensor field."""

    def __init__(self, array: np.ndarray):
        self.array = array

    def __len__(self) -> int:
        return len(self.array)

    @property
    def shape(self) -> torch.Size:
        return torch.Size(self.array.shape)

    @property
    def ndim(self) -> int:
        return self.array.ndim

    @property
    def dtype(self) -> torch.dtype:
        return torch.from_numpy(np.zeros(0, self.array.dtype)).dtype

    def __getitem__(self, idx) -> torch.Tensor:
        if isinstance(idx, torch.Tensor):
            idx = idx.numpy()
        return torch.from_numpy(np.array(self.array[idx]))


@dataclass
class ImageDataset:
    name: str
    split: str
    fields: dict[str, torch.Tensor | MappedArray]   # field -> (N, ...), aligned rows; "image" always
    classes: list[str] = field(default_factory=list)

    def __post_init__(self):
        if "image" not in self.fields:
            raise ValueError(f"{self.name}: a dataset needs an 'image' field (has {', '.join(self.fields)})")
        n = len(self.fields["image"])
        for k, t in self.fields.items():
            if len(t) != n:
                raise ValueError(f"{self.name}: field '{k}' has {len(t)} rows, 'image' has {n}")
        for k in ("image", "target_image"):
            t = self.fields.get(k)
            if t is not None and (t.dtype != torch.uint8 or t.ndim != 4):
                raise ValueError(f"{k} must be uint8 (N, C, H, W), got {t.dtype} {tuple(t.shape)}")
        lab = self.fields.get("label")
        if lab is not None and (lab.dtype != torch.int64 or tuple(lab.shape) != (n,)):
            raise ValueError(f"labels must be int64 (N,), got {lab.dtype} {tuple(lab.shape)}")
        self.fields = {k: t.contiguous() if isinstance(t, torch.Tensor) else t for k, t in self.fields.items()}

    @property
    def images(self):
        return self.fields["image"]

    @property
    def labels(self):
        if "label" not in self.fields:
            raise DataError(f"{self.name}: has no 'label' field (fields: {', '.join(self.fields)})")
        return self.fields["label"]

    def __len__(self) -> int:
        return len(self.fields["image"])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: t[i] for k, t in self.fields.items()}

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
        """A copy holding only `indices` (int sequence/tensor, or a bool mask), every field in memory."""
        idx = torch.as_tensor(indices if not isinstance(indices, range) else list(indices))
        idx = idx.nonzero().squeeze(1) if idx.dtype == torch.bool else idx.long()
        return ImageDataset(self.name, self.split, {k: t[idx] for k, t in self.fields.items()}, list(self.classes))


def split_train_val(n: int, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed seeded split of ``range(n)`` into train and validation indices."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(10_000 + seed))
    n_val = int(round(n * val_fraction))
    return perm[n_val:], perm[:n_val]


def _field(a: np.ndarray, lazy: bool):
    if lazy and isinstance(a, np.memmap):
        return MappedArray(a)
    return torch.from_numpy(np.require(a, requirements=["C", "W"]))  # writable, contiguous


def load_dataset(name: str, split: str = "train", data_dir: str | Path | None = None,
                 lazy: bool = False) -> ImageDataset:
    """A registered dataset (``DATASETS``: its loader reads <data_dir>/<name>/ or makes the data), or a
    directory path holding train.npz / test.npz (``readers.write_npz_split``), the four MNIST-layout idx files,
    or one sub-folder of images per class.
    ``lazy``: fields the loader memory-maps stay on disk, rows read on indexing (``MappedArray``)."""
    if split not in SPLITS:
        raise DataError(f"{name}: unknown split {split!r} (expected one of {', '.join(SPLITS)})")
    name = str(name)
    if name in DATASETS:
        spec, data_root = DATASETS[name], resolve_data_dir(data_dir)
        try:
            arrays = spec.load(data_root, split, lazy)
        except readers.MissingFileError as e:
            need = spec.fetch_as or name
            raise DataError(f"{e} (run `latentlab data fetch {need}`, or set data_dir=DIR or "
                            f"$LATENTLAB_DATA to a folder holding {need}/)") from None
        if set(arrays) != set(spec.fields):
            raise DataError(f"{name}: loader gave fields {sorted(arrays)}, the spec names {sorted(spec.fields)}")
        if tuple(arrays["image"].shape[1:]) != spec.shape:
            raise DataError(f"{data_root / name}: images have shape {arrays['image'].shape[1:]}, expected {spec.shape}")
        return ImageDataset(name, split, {k: _field(a, lazy) for k, a in arrays.items()}, list(spec.classes))
    if Path(name).expanduser().is_dir():
        root = Path(name).expanduser()
        if readers.has_npz(root) or readers.has_idx(root):
            x, y = (readers.read_npz_split(root, split) if readers.has_npz(root)
                    else readers.read_idx_split(root, split, num_classes=None))
            classes = [str(i) for i in range(max(10, int(y.max(initial=0)) + 1))]
        else:
            x, y, classes = readers.read_image_folder(root, split)
        return ImageDataset(root.resolve().name, split, {"image": _field(x, False), "label": _field(y, False)},
                            classes)
    from latentlab.data.synthetic import DISTRIBUTIONS

    hint = (" (a synthetic 1-D/2-D distribution of points, not images: for gan1d and gan2d only)"
            if name in DISTRIBUTIONS else "")
    raise DataError(f"{name}: unknown dataset{hint}; known: {', '.join(DATASETS)}, "
                    "or a directory of train.npz / test.npz, of MNIST idx files or of class sub-folders")
