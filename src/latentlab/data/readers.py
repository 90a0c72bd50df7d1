"""File-format readers. Each returns numpy arrays: images uint8 (N, C, H, W), labels int64 (N,).

Every reader validates what it reads and raises DataError("<path>: <problem>") on missing,
truncated or inconsistent files.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import tarfile
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from latentlab.errors import DataError
from latentlab.fileio import atomic_open
from latentlab.data.paths import resolve_cache_dir

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm"}
GREY_MODES = {"1", "L", "LA", "I", "I;16", "F"}
Arrays = tuple[np.ndarray, np.ndarray]


class MissingFileError(DataError):
    """A required data file does not exist."""


def _need(path: Path) -> Path:
    if not path.is_file():
        raise MissingFileError(f"{path}: file not found")
    return path


def check_labels(y: np.ndarray, num_classes: int, path: Path) -> None:
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise DataError(f"{path}: labels out of range [0, {num_classes}) (min {y.min()}, max {y.max()})")


def stratified_split(labels: np.ndarray, split: str, test_frac: float = 0.2, seed: int = 0) -> np.ndarray:
    """Sorted indices of a fixed seeded stratified hold-out: round(test_frac * n_c) of class c go to test."""
    rng = np.random.default_rng(seed)
    test = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        test[rng.permutation(idx)[: round(test_frac * len(idx))]] = True
    return np.flatnonzero(test if split == "test" else ~test)


# ----------------------------------------------------------------------------- digits (embedded)

def read_digits(split: str) -> Arrays:
    """scikit-learn's copy of the UCI optical digits (Alpaydin & Kaynak 1998): 1797 8x8, values 0..16."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.round(d.images * (255 / 16)).astype(np.uint8)[:, None]  # (1797, 1, 8, 8)
    y = d.target.astype(np.int64)
    idx = stratified_split(y, split)
    return x[idx], y[idx]


# ----------------------------------------------------------------------------- MNIST idx

def _read_maybe_gz(path: Path) -> bytes:
    try:
        raw = _need(path).read_bytes()
        if not raw:
            raise DataError(f"{path}: empty file (0 bytes)")
        return gzip.decompress(raw) if path.suffix == ".gz" else raw
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError
        raise DataError(f"{path}: corrupt or truncated gzip ({e})") from None


def read_idx(path: Path, magic: int) -> np.ndarray:
    """IDX file (LeCun et al. 1998): big-endian magic 2049 = labels (N,), 2051 = images (N, H, W)."""
    b = _read_maybe_gz(path)
    ndim = {2049: 1, 2051: 3}[magic]
    if len(b) < 4:
        raise DataError(f"{path}: " + ("empty once decompressed (0 bytes)" if not b else
                                       f"truncated idx header ({len(b)} bytes)"))
    got = int.from_bytes(b[:4], "big")
    if got != magic:
        raise DataError(f"{path}: wrong idx magic number {got} (expected {magic})")
    if len(b) < 4 + 4 * ndim:
        raise DataError(f"{path}: truncated idx header")
    dims = tuple(int(d) for d in np.frombuffer(b, ">u4", ndim, 4))
    expected = 4 + 4 * ndim + int(np.prod(dims))
    if len(b) != expected:
        raise DataError(f"{path}: {len(b)} bytes but idx header dims {dims} need {expected}")
    return np.frombuffer(b, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find_idx(root: Path, prefix: str, kind: str) -> Path:
    """<prefix>-<kind>-idx?-ubyte[.gz] (also the '<kind>.idx?-ubyte' spelling); the .gz path if none."""
    n = 3 if kind == "images" else 1
    names = [f"{prefix}-{kind}-idx{n}-ubyte", f"{prefix}-{kind}.idx{n}-ubyte"]
    for cand in [root / (s + ext) for s in names for ext in (".gz", "")]:
        if cand.is_file():
            return cand
    return root / (names[0] + ".gz")


def has_idx(root: Path) -> bool:
    return any(find_idx(root, p, k).is_file() for p in ("train", "t10k") for k in ("images", "labels"))


def read_idx_split(root: Path, split: str, num_classes: int | None = 10) -> Arrays:
    prefix = "train" if split == "train" else "t10k"
    ipath, lpath = find_idx(root, prefix, "images"), find_idx(root, prefix, "labels")
    x, y = read_idx(ipath, 2051), read_idx(lpath, 2049).astype(np.int64)
    if len(x) != len(y):
        raise DataError(f"{ipath}: {len(x)} images but {lpath.name} has {len(y)} labels")
    check_labels(y, num_classes or max(10, int(y.max(initial=0)) + 1), lpath)
    return x[:, None], y  # (N, 1, H, W), (N,)


# ----------------------------------------------------------------------------- USPS (HDF5)

def read_usps_h5(path: Path, split: str) -> Arrays:
    """USPS (Hull 1994), Kaggle 'usps-dataset' HDF5 layout: <split>/data (N, 256) in [0, 1], <split>/target."""
    import h5py

    try:
        with h5py.File(_need(path), "r") as f:
            if split not in f or "data" not in f[split] or "target" not in f[split]:
                raise DataError(f"{path}: no '{split}/data' and '{split}/target' datasets")
            x, y = f[split]["data"][()], f[split]["target"][()]
    except (OSError, KeyError, ValueError) as e:
        raise DataError(f"{path}: corrupt or unreadable HDF5 ({e})") from None
    if x.ndim != 2 or x.shape[1] != 256 or y.shape != (len(x),):
        raise DataError(f"{path}: {split}/data shape {x.shape} and target shape {y.shape} do not match (N, 256), (N,)")
    if not np.isfinite(x).all() or x.min(initial=0) < 0 or x.max(initial=0) > 1:
        raise DataError(f"{path}: {split}/data values outside [0, 1]")
    y = y.astype(np.int64)
    check_labels(y, 10, path)
    return np.round(x * 255).astype(np.uint8).reshape(-1, 1, 16, 16), y


# ----------------------------------------------------------------------------- MNIST-M (tar.gz of PNGs)

_PNG_RE = re.compile(r"(?:^|/)mnist_m_(train|test)/([^/]+\.png)$")
_LABELS_RE = re.compile(r"(?:^|/)mnist_m_(train|test)_labels\.txt$")


def _decode_png(data: bytes, where: str, size: tuple[int, int] | None = None, rgb: bool = True) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            arr = np.asarray(im.convert("RGB" if rgb or im.mode not in GREY_MODES else "L"))
    except UnidentifiedImageError:
        raise DataError(f"{where}: corrupt image (not a format Pillow can read)") from None
    except (OSError, SyntaxError, ValueError) as e:
        why = re.sub(r"\s*<_io\.BytesIO object at 0x[0-9a-f]+>", "", str(e)).strip() or type(e).__name__
        raise DataError(f"{where}: corrupt image ({why})") from None
    if size is not None and arr.shape[:2] != size:
        raise DataError(f"{where}: image size {arr.shape[1]}x{arr.shape[0]}, expected {size[1]}x{size[0]}")
    return arr


def decode_mnist_m_tar(archive: Path) -> dict[str, Arrays]:
    """Read both splits of MNIST-M (Ganin & Lempitsky 2015) straight out of the tar.gz, one pass."""
    pngs: dict[str, dict[str, bytes]] = {"train": {}, "test": {}}
    labels: dict[str, dict[str, int]] = {}
    try:
        with tarfile.open(_need(archive), "r|gz") as tar:
            for m in tar:
                if not m.isfile():
                    continue
                if p := _PNG_RE.search(m.name):
                    pngs[p[1]][p[2]] = tar.extractfile(m).read()
                elif p := _LABELS_RE.search(m.name):
                    labels[p[1]] = _parse_labels(tar.extractfile(m).read(), f"{archive}:{m.name}")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise DataError(f"{archive}: corrupt or truncated tar.gz ({e})") from None
    out = {}
    for split, files in pngs.items():
        if split not in labels:
            raise DataError(f"{archive}: no mnist_m_{split}_labels.txt member")
        names, lab = sorted(files), labels[split]
        if missing := sorted(set(lab) ^ set(names)):
            raise DataError(f"{archive}: mnist_m_{split}: {len(missing)} PNG/label entries unmatched (e.g. {missing[0]})")
        x = np.empty((len(names), 32, 32, 3), np.uint8)
        for i, n in enumerate(names):
            x[i] = _decode_png(files.pop(n), f"{archive}:mnist_m_{split}/{n}", (32, 32))
        y = np.array([lab[n] for n in names], np.int64)
        check_labels(y, 10, archive)
        out[split] = np.ascontiguousarray(x.transpose(0, 3, 1, 2)), y  # (N, 3, 32, 32), (N,)
    return out


def _parse_labels(data: bytes, where: str) -> dict[str, int]:
    out = {}
    for i, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise DataError(f"{where}: line {i}: expected '<file> <digit>', got {line[:40]!r}")
        out[parts[0]] = int(parts[1])
    return out


def _save_npy(path: Path, arr: np.ndarray) -> None:
    """Atomic (temp file in the same directory, fsync, os.replace)."""
    with atomic_open(path) as f:
        np.save(f, arr)


def read_mnist_m(archive: Path, split: str, mmap: bool = False) -> Arrays:
    """MNIST-M, cached as .npy in the cache dir keyed by the archive's path, size and mtime; ``mmap``: the
    cached images memory-mapped (read on demand) once the cache exists."""
    st = _need(archive).stat()
    tag = hashlib.sha1(str(archive.resolve()).encode()).hexdigest()[:10]
    cache, key = resolve_cache_dir(), f"mnist_m-{tag}-{st.st_size}-{st.st_mtime_ns}"
    xp, yp = cache / f"{key}-{split}-images.npy", cache / f"{key}-{split}-labels.npy"
    try:
        x, y = np.load(xp, mmap_mode="r" if mmap else None), np.load(yp)
        if x.dtype == np.uint8 and x.shape[1:] == (3, 32, 32) and y.dtype == np.int64 and y.shape == (len(x),):
            return x, y
    except (OSError, ValueError, EOFError):
        pass  # no cache yet (or a broken one): decode the archive
    data = decode_mnist_m_tar(archive)
    try:
        cache.mkdir(parents=True, exist_ok=True)
        for old in cache.glob(f"mnist_m-{tag}-*.npy"):  # caches of an older version of this archive
            if not old.name.startswith(key):
                old.unlink(missing_ok=True)
        for s, (xs, ys) in data.items():
            _save_npy(cache / f"{key}-{s}-labels.npy", ys)
            _save_npy(cache / f"{key}-{s}-images.npy", xs)
    except OSError as e:
        warnings.warn(f"{cache}: could not write the MNIST-M cache ({e}); it will be decoded again next time")
    return data[split]


# ----------------------------------------------------------------------------- image folder tree

NPZ_SPLITS = {"train": "train.npz", "test": "test.npz"}


def has_npz(root: Path) -> bool:
    return any((root / f).is_file() for f in NPZ_SPLITS.values())


def _check_npz_arrays(x: np.ndarray, y: np.ndarray, where) -> None:
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1] not in (1, 3):
        raise DataError(f"{where}: image must be uint8 (N, 1 or 3, H, W), got {x.dtype} {x.shape}")
    if y.shape != (len(x),):
        raise DataError(f"{where}: {len(x)} images but label has shape {y.shape}")


def write_npz_split(root: Path, split: str, images: np.ndarray, labels: np.ndarray) -> Path:
    """<root>/<split>.npz holding ``image`` uint8 (N, C, H, W) and ``label`` int64 (N,), written atomically (a
    dataset another program made, e.g. translated images: ``load_dataset(root)`` reads it back)."""
    images, labels = np.asarray(images), np.asarray(labels)
    _check_npz_arrays(images, labels, root)
    path = Path(root) / NPZ_SPLITS[split]
    with atomic_open(path) as f:
        np.savez(f, image=images, label=labels.astype(np.int64))
    return path


def read_npz_split(root: Path, split: str) -> Arrays:
    """The split written by ``write_npz_split``, checked: uint8 (N, C, H, W) images, one label each, 10 classes
    at least (the label range sets the classes)."""
    path = _need(Path(root) / NPZ_SPLITS["train" if split == "train" else "test"])
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("image", "label") if k not in z.files]
            if missing:
                raise DataError(f"{path}: no array {missing[0]!r} (expected image and label)")
            x, y = z["image"], z["label"]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise DataError(f"{path}: not a readable .npz ({e})") from None
    _check_npz_arrays(x, y, path)
    y = y.astype(np.int64)
    check_labels(y, max(10, int(y.max(initial=0)) + 1), path)
    return x, y


def _class_dirs(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images_in(d: Path) -> list[Path]:
    return sorted(p for p in d.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())


def read_image_folder(root: Path, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """<root>/<class>/*.png, or <root>/{train,test}/<class>/*.png. Without train/ and test/, a fixed
    seeded stratified 20% of each class is held out as the test split (as for `digits`)."""
    presplit = all((root / s).is_dir() and _class_dirs(root / s) for s in ("train", "test"))
    if presplit:
        classes = sorted(set(_class_dirs(root / "train")) | set(_class_dirs(root / "test")))
        base = root / split
    else:
        classes, base = _class_dirs(root), root
    files, y = [], []
    for c, name in enumerate(classes):
        found = _images_in(base / name) if (base / name).is_dir() else []
        if (base / name).is_dir() and not found:
            raise DataError(f"{base / name}: class folder with no images ({', '.join(sorted(IMAGE_EXTS))}); "
                            f"add images or remove the folder")
        files += found
        y += [c] * len(found)
    if not files:
        raise DataError(f"{root}: neither MNIST idx files nor class sub-folders with images found")
    y = np.array(y, np.int64)
    if not presplit:
        idx = stratified_split(y, split)
        files, y = [files[i] for i in idx], y[idx]
    arrs, size = [], None
    for f in files:
        a = _decode_png(_need(f).read_bytes(), str(f), size, rgb=False)  # (H, W) or (H, W, 3)
        size = size or a.shape[:2]
        arrs.append(a)
    if not arrs:
        raise DataError(f"{root}: no images in the {split} split")
    if all(a.ndim == 2 for a in arrs):
        x = np.stack(arrs)[:, None]  # (N, 1, H, W)
    else:
        x = np.stack([np.repeat(a[..., None], 3, -1) if a.ndim == 2 else a for a in arrs]).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x), y, classes
