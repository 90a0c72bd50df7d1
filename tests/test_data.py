"""Data layer: real datasets from ../shared/data (skipped where absent), tiny crafted files for
idx dirs, image folders, MNIST-M archives and every error path, and synthetic distributions."""

from __future__ import annotations

import bz2
import gzip
import io
import os
import re
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from PIL import Image

from latentlab.errors import DataError
from latentlab.data import (DATASETS, DISTRIBUTIONS, ImageDataset, gaussian_1d, get_distribution, is_synthetic,
                            load_dataset, resolve_data_dir)
from latentlab.data import readers

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MNIST_TRAIN = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def shared(dataset: str) -> Path:
    if not (SHARED / dataset).is_dir():
        pytest.skip(f"{SHARED / dataset} absent")
    return SHARED


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LATENTLAB_MIRROR", raising=False)


# ----------------------------------------------------------------------------- crafted files

def write_idx(path: Path, arr: np.ndarray, magic: int | None = None) -> Path:
    magic = magic or (2051 if arr.ndim == 3 else 2049)
    b = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in arr.shape) + arr.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(b) if path.suffix == ".gz" else b)
    return path


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def make_mnist_m(path: Path, n: dict[str, int], seed: int = 0, bad: str | None = None) -> dict:
    """A tiny mnist_m.tar.gz with the real layout; returns {split: (images (N,3,32,32), labels)}."""
    rng, out = np.random.default_rng(seed), {}
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        def add(name: str, data: bytes):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for split, k in n.items():
            x = rng.integers(0, 256, (k, 32, 32, 3), dtype=np.uint8)
            y = rng.integers(0, 10, k)
            names = [f"{i:08d}.png" for i in range(k)]
            for i, nm in enumerate(names):
                add(f"mnist_m/mnist_m_{split}/{nm}", b"not a png" if nm == bad else png_bytes(x[i]))
            add(f"mnist_m/mnist_m_{split}_labels.txt", "".join(f"{nm} {c}\n" for nm, c in zip(names, y)).encode())
            out[split] = x.transpose(0, 3, 1, 2), y
    return out


def make_idx_dir(root: Path, gz: bool = True, n=(12, 5)) -> dict:
    root.mkdir(parents=True, exist_ok=True)
    rng, ext, out = np.random.default_rng(1), ".gz" if gz else "", {}
    for split, prefix, k in (("train", "train", n[0]), ("test", "t10k", n[1])):
        x, y = rng.integers(0, 256, (k, 7, 5), dtype=np.uint8), rng.integers(0, 10, k)
        write_idx(root / f"{prefix}-images-idx3-ubyte{ext}", x)
        write_idx(root / f"{prefix}-labels-idx1-ubyte{ext}", y)
        out[split] = x, y
    return out


# ----------------------------------------------------------------------------- real datasets

@pytest.mark.parametrize("split,counts", [("train", MNIST_TRAIN), ("test", MNIST_TEST)])
def test_mnist_real(split, counts):
    ds = load_dataset("mnist", split, shared("mnist"))
    assert (len(ds), ds.shape, ds.num_classes, ds.classes[3]) == (sum(counts), (1, 28, 28), 10, "3")
    assert ds.images.dtype == torch.uint8 and ds.labels.dtype == torch.int64 and ds.images.is_contiguous()
    assert torch.bincount(ds.labels).tolist() == counts
    if split == "train":  # the usual normalisation constant, mean 0.1307
        assert abs(ds.images.float().mean().item() / 255 - 0.1307) < 1e-3


def test_usps_real():
    data = shared("usps")
    tr, te = load_dataset("usps", "train", data), load_dataset("usps", "test", data)
    assert (len(tr), len(te), tr.shape) == (7291, 2007, (1, 16, 16))
    assert torch.bincount(tr.labels).tolist() == [1194, 1005, 731, 658, 652, 556, 664, 645, 542, 644]
    assert int(tr.images.min()) == 0 and int(tr.images.max()) == 255
    libsvm = bz2.decompress((data / "usps" / "usps.t.bz2").read_bytes()).split(b"\n")
    assert te.labels.tolist() == [int(line.split(maxsplit=1)[0]) - 1 for line in libsvm if line.strip()]


@pytest.mark.slow
def test_mnist_m_real():
    data = shared("mnist_m")
    tr = load_dataset("mnist_m", "train", data)
    te = load_dataset("mnist_m", "test", data)  # from the cache written by the first read
    assert (len(tr), len(te), tr.shape, te.images.dtype) == (59001, 9001, (3, 32, 32), torch.uint8)
    assert torch.bincount(tr.labels).tolist() == [5825, 6640, 5853, 6028, 5746, 5331, 5812, 6158, 5757, 5851]
    assert torch.bincount(te.labels).tolist() == [878, 1016, 933, 908, 890, 807, 856, 914, 880, 919]
    if (data / "mnist").is_dir():  # MNIST-M labels are MNIST's first 59001 / 9001 labels
        assert torch.equal(tr.labels, load_dataset("mnist", "train", data).labels[:59001])


def test_digits_split_is_fixed_and_stratified():
    tr, te = load_dataset("digits"), load_dataset("digits", "test")
    assert (len(tr), len(te), tr.shape, te.num_classes) == (1438, 359, (1, 8, 8), 10)
    assert int(tr.images.min()) == 0 and int(tr.images.max()) == 255
    assert set(tr.images.unique().tolist()) <= {round(v * 255 / 16) for v in range(17)}
    assert torch.equal(load_dataset("digits").images, tr.images)  # deterministic
    per_class = torch.bincount(tr.labels) + torch.bincount(te.labels)
    assert torch.equal(torch.bincount(te.labels), torch.round(per_class * 0.2).long())


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=60))
def test_stratified_split_partitions(labels):
    y = np.array(labels)
    tr, te = readers.stratified_split(y, "train"), readers.stratified_split(y, "test")
    assert sorted(np.concatenate([tr, te]).tolist()) == list(range(len(y)))
    for c in np.unique(y):
        assert (y[te] == c).sum() == round(0.2 * (y == c).sum())


# ----------------------------------------------------------------------------- MNIST-M from a tiny archive

def test_mnist_m_tiny_archive_and_cache(tmp_path, monkeypatch):
    arc = tmp_path / "data" / "mnist_m" / "mnist_m.tar.gz"
    want = make_mnist_m(arc, {"train": 6, "test": 4})
    for split in ("train", "test"):
        ds = load_dataset("mnist_m", split, tmp_path / "data")
        assert ds.shape == (3, 32, 32) and np.array_equal(ds.images.numpy(), want[split][0])
        assert ds.labels.tolist() == want[split][1].tolist()
    cached = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(cached) == 4 and all(n.endswith(".npy") for n in cached)  # no temp files left
    # the second read comes from the cache, without touching the archive ...
    monkeypatch.setattr(readers, "decode_mnist_m_tar", lambda a: pytest.fail("archive decoded again"))
    assert load_dataset("mnist_m", "test", tmp_path / "data").labels.tolist() == want["test"][1].tolist()
    monkeypatch.undo()
    monkeypatch.setenv("LATENTLAB_CACHE", str(tmp_path / "cache"))
    # ... and a changed archive is read again (its stale cache is dropped)
    want2 = make_mnist_m(arc, {"train": 3, "test": 2}, seed=5)
    os.utime(arc, ns=(1, 1))
    ds = load_dataset("mnist_m", "train", tmp_path / "data")
    assert np.array_equal(ds.images.numpy(), want2["train"][0])
    assert len(list((tmp_path / "cache").iterdir())) == 4


def test_mnist_m_bad_png_and_truncated(tmp_path):
    arc = tmp_path / "mnist_m" / "mnist_m.tar.gz"
    make_mnist_m(arc, {"train": 3, "test": 2}, bad="00000001.png")
    with pytest.raises(DataError, match=r"mnist_m\.tar\.gz:mnist_m_train/00000001\.png: corrupt image"):
        load_dataset("mnist_m", "train", tmp_path)
    make_mnist_m(arc, {"train": 3, "test": 2})
    arc.write_bytes(arc.read_bytes()[: arc.stat().st_size // 2])
    with pytest.raises(DataError, match=re.escape(f"{arc}: corrupt or truncated tar.gz")):
        load_dataset("mnist_m", "test", tmp_path)


# ----------------------------------------------------------------------------- directories as datasets

@pytest.mark.parametrize("gz", [True, False])
def test_idx_directory(tmp_path, gz):
    want = make_idx_dir(tmp_path / "fake", gz=gz)
    for split in ("train", "test"):
        ds = load_dataset(str(tmp_path / "fake"), split)
        assert (ds.name, ds.split, ds.shape, ds.num_classes) == ("fake", split, (1, 7, 5), 10)
        assert np.array_equal(ds.images.numpy()[:, 0], want[split][0]) and ds.labels.tolist() == want[split][1].tolist()


def _write_images(d: Path, k: int, size=(6, 4), mode="L", seed=0):
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0]) + ((3,) if mode == "RGB" else ())
    for i in range(k):
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(d / f"{i}.png")


def test_image_folder_holds_out_20_percent(tmp_path):
    for c, k in (("b_cat", 5), ("a_dog", 10)):
        _write_images(tmp_path / "pets" / c, k, seed=k)
    (tmp_path / "pets" / "a_dog" / "notes.txt").write_text("ignored")
    tr, te = load_dataset(tmp_path / "pets", "train"), load_dataset(tmp_path / "pets", "test")
    assert (tr.classes, tr.shape, len(tr), len(te)) == (["a_dog", "b_cat"], (1, 4, 6), 12, 3)
    assert torch.bincount(te.labels).tolist() == [2, 1]
    assert torch.equal(load_dataset(tmp_path / "pets", "test").images, te.images)
    # every image lands in exactly one split
    rows = {bytes(x) for x in torch.cat([tr.images, te.images]).flatten(1).numpy()}
    assert len(rows) == 15


def test_image_folder_train_test_colour(tmp_path):
    for split, k in (("train", 3), ("test", 2)):
        for c in ("x", "y"):
            _write_images(tmp_path / "f" / split / c, k, mode="RGB", seed=k)
    _write_images(tmp_path / "f" / "test" / "x" / "grey", 1)  # grey images in a colour set become RGB
    tr, te = load_dataset(tmp_path / "f", "train"), load_dataset(tmp_path / "f", "test")
    assert (tr.shape, len(tr), len(te), tr.classes) == ((3, 4, 6), 6, 5, ["x", "y"])


def test_image_folder_errors(tmp_path):
    _write_images(tmp_path / "f" / "a", 3)
    _write_images(tmp_path / "f" / "b", 1, size=(5, 5))
    with pytest.raises(DataError, match=r"b/0\.png: image size 5x5, expected 6x4"):
        load_dataset(tmp_path / "f", "train")
    (tmp_path / "f" / "b" / "0.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(DataError, match=r"b/0\.png: corrupt image"):
        load_dataset(tmp_path / "f", "train")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="neither MNIST idx files nor class sub-folders"):
        load_dataset(tmp_path / "empty")
    (tmp_path / "empty" / "nothing").mkdir()
    with pytest.raises(DataError, match=r"empty/nothing: class folder with no images"):
        load_dataset(tmp_path / "empty")


# ----------------------------------------------------------------------------- error paths

def test_missing_file_names_it(tmp_path):
    with pytest.raises(DataError, match=r"mnist/train-images-idx3-ubyte\.gz: file not found .*data fetch mnist"):
        load_dataset("mnist", "train", tmp_path)
    with pytest.raises(DataError, match=r"usps/usps\.h5: file not found"):
        load_dataset("usps", "test", tmp_path)
    make_idx_dir(tmp_path / "d")
    (tmp_path / "d" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz: file not found"):
        load_dataset(tmp_path / "d", "test")


def test_truncated_gzip(tmp_path):
    make_idx_dir(tmp_path / "mnist")
    p = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    p.write_bytes(p.read_bytes()[:-12])
    with pytest.raises(DataError, match=re.escape(f"{p}: corrupt or truncated gzip")):
        load_dataset("mnist", "train", tmp_path)


def test_wrong_magic_and_count_mismatch(tmp_path):
    make_idx_dir(tmp_path / "mnist")
    p = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
    write_idx(p, np.zeros(5, np.uint8), magic=2051 + 7)
    with pytest.raises(DataError, match=re.escape(f"{p}: wrong idx magic number 2058 (expected 2049)")):
        load_dataset("mnist", "test", tmp_path)
    write_idx(p, np.zeros(4, np.uint8))
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz: 5 images but t10k-labels-idx1-ubyte\.gz has 4"):
        load_dataset("mnist", "test", tmp_path)
    raw = gzip.decompress(p.read_bytes())
    p.write_bytes(gzip.compress(raw[:-1]))  # header says 4 labels, 3 bytes follow
    with pytest.raises(DataError, match=re.escape(f"{p}: 11 bytes but idx header dims (4,) need 12")):
        load_dataset("mnist", "test", tmp_path)
    write_idx(p, np.array([1, 2, 3, 12, 0], np.uint8))
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz: labels out of range \[0, 10\)"):
        load_dataset("mnist", "test", tmp_path)


def test_corrupt_usps_h5(tmp_path):
    (tmp_path / "usps").mkdir()
    (tmp_path / "usps" / "usps.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(DataError, match=r"usps/usps\.h5: corrupt or unreadable HDF5"):
        load_dataset("usps", "train", tmp_path)


def test_unknown_names_and_split(tmp_path):
    with pytest.raises(DataError, match=r"cifar11: unknown dataset.*known: digits, mnist, usps, mnist_m"):
        load_dataset("cifar11")
    with pytest.raises(DataError, match="ring8: unknown dataset .*synthetic"):
        load_dataset("ring8")
    with pytest.raises(DataError, match="unknown split 'val'"):
        load_dataset("digits", "val")
    with pytest.raises(DataError, match="blob: unknown synthetic distribution; known: gauss1d, ring8, grid25"):
        get_distribution("blob")


# ----------------------------------------------------------------------------- API bits

def test_image_dataset_api():
    ds = load_dataset("digits", "test")
    sub = ds.subset([3, 0, 3])
    assert len(sub) == 3 and torch.equal(sub.images[1], ds.images[0]) and sub.images.is_contiguous()
    assert len(ds.subset(ds.labels == 4)) == int((ds.labels == 4).sum())
    row = ds[5]                                           # one example: field -> value
    assert row["image"].shape == (1, 8, 8) and row["label"] == ds.labels[5]
    with pytest.raises(ValueError):                       # float images
        ImageDataset("x", "train", {"image": torch.zeros(2, 1, 4, 4), "label": torch.zeros(2, dtype=torch.long)}, ["0"])


def test_registry_and_data_dir(monkeypatch, tmp_path):
    assert {"digits", "mnist", "usps", "mnist_m"} <= set(DATASETS) and DATASETS["digits"].embedded
    assert all(set(s.urls) == set(s.files) for s in DATASETS.values())
    assert DATASETS["mnist_m"].shape == (3, 32, 32)
    monkeypatch.setenv("LATENTLAB_DATA", str(tmp_path))
    assert resolve_data_dir() == tmp_path and resolve_data_dir("/x") == Path("/x")
    monkeypatch.delenv("LATENTLAB_DATA")
    assert resolve_data_dir() == Path.home() / ".cache" / "latentlab" / "data"
    sums = SHARED / "SHA256SUMS"
    if sums.is_file():  # the registry's checksums are the published ones
        listed = dict(line.split()[::-1] for line in sums.read_text().splitlines() if line.strip())
        for s in DATASETS.values():
            for rel, sha in s.files.items():
                assert listed[f"{s.name}/{rel}"] == sha


# ----------------------------------------------------------------------------- synthetic distributions

def _nearest(x: torch.Tensor, modes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    d = torch.cdist(x, modes)  # (n, M)
    return d.min(1).values, d.argmin(1)


@pytest.mark.parametrize("name,m,sigma", [("ring8", 8, 0.01), ("grid25", 25, 0.05)])
def test_mixtures(name, m, sigma):
    dist = get_distribution(name)
    assert is_synthetic(name) and not is_synthetic("mnist") and dist.modes.shape == (m, 2)
    x = dist.sample(4000, torch.Generator().manual_seed(0))
    assert x.shape == (4000, 2) and x.dtype == torch.float32
    dist_to_mode, k = _nearest(x, dist.modes)
    assert dist_to_mode.max() < 6 * sigma  # every sample sits at a mode
    assert abs(dist_to_mode.pow(2).mean().item() / (2 * sigma**2) - 1) < 0.1  # with variance sigma^2 per axis
    counts = torch.bincount(k, minlength=m).float()
    assert counts.min() > 0.6 * 4000 / m and counts.max() < 1.4 * 4000 / m  # modes picked uniformly
    if name == "ring8":
        assert torch.allclose(dist.modes.norm(dim=1), torch.ones(8))
    else:
        assert sorted(set(dist.modes[:, 0].tolist())) == [-4, -2, 0, 2, 4]


def test_gauss1d_and_reproducibility():
    x = DISTRIBUTIONS["gauss1d"].sample(20000, torch.Generator().manual_seed(1))
    assert x.shape == (20000, 1) and abs(x.mean() - 4.0) < 0.05 and abs(x.std() - 1.25) < 0.05
    y = gaussian_1d(-1.0, 0.5).sample(20000, torch.Generator().manual_seed(1))
    assert abs(y.mean() + 1.0) < 0.02 and abs(y.std() - 0.5) < 0.02
    d = get_distribution("grid25")
    a, b = d.sample(50, torch.Generator().manual_seed(3)), d.sample(50, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and not torch.equal(a, d.sample(50, torch.Generator().manual_seed(4)))
    one = replace(d, weights=torch.eye(25)[7])  # all weight on mode 7
    assert torch.equal(_nearest(one.sample(100), d.modes)[1], torch.full((100,), 7))


def test_train_val_split_is_seeded_disjoint_and_complete():
    from latentlab.data import load_dataset
    d = load_dataset("digits", "train")
    tr, va = d.train_val(0.1, seed=3)
    assert len(va) == round(0.1 * len(d)) and len(tr) + len(va) == len(d)
    tr2, va2 = d.train_val(0.1, seed=3)
    assert torch.equal(va.images, va2.images) and torch.equal(tr.labels, tr2.labels)
    _, va3 = d.train_val(0.1, seed=4)
    assert not torch.equal(va.images, va3.images)
    from latentlab.data import split_train_val
    ti, vi = split_train_val(len(d), 0.1, seed=3)
    assert sorted(torch.cat([ti, vi]).tolist()) == list(range(len(d)))  # disjoint and complete
    assert torch.equal(va.images, d.images[vi]) and torch.equal(tr.labels, d.labels[ti])
