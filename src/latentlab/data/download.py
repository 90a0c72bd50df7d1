"""Fetch and verify dataset files.

A download goes to a temp file in the destination directory, is checked against the spec's
SHA-256, fsync'ed and moved into place with os.replace: a failed or corrupt download leaves
nothing behind, and a file that already verifies is never downloaded again or overwritten.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import urllib.request
from pathlib import Path

from latentlab.errors import DataError
from latentlab.fileio import atomic_open
from latentlab.data.paths import resolve_data_dir
from latentlab.data.registry import DATASETS, DatasetSpec


def get_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise DataError(f"{name}: unknown dataset; known: {', '.join(DATASETS)}")
    return DATASETS[name]


def sha256_file(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def verify(name: str, data_dir: str | Path | None = None) -> dict[str, str]:
    """relpath -> "ok" | "missing" | "mismatch" for every file of the dataset."""
    root = resolve_data_dir(data_dir) / name
    out = {}
    for rel, sha in get_spec(name).files.items():
        p = root / rel
        out[rel] = "missing" if not p.is_file() else "ok" if sha256_file(p) == sha else "mismatch"
    return out


def ensure_verified(name: str, data_dir: str | Path | None = None) -> None:
    """Raise DataError unless every file of the dataset is present with the right checksum."""
    bad = {r: s for r, s in verify(name, data_dir).items() if s != "ok"}
    if bad:
        root = resolve_data_dir(data_dir) / name
        raise DataError(f"{root}: " + ", ".join(f"{r} {s}" for r, s in bad.items())
                        + f" (run `latentlab data fetch {name}`)")


def _download(url: str, dest: Path, sha256: str, progress: bool) -> None:
    # a temporary file in the same dir, moved into place only once its checksum is right
    with atomic_open(dest, ".part") as f, urllib.request.urlopen(url, timeout=60) as r:
        h, done = hashlib.sha256(), 0
        total = int(r.headers.get("Content-Length") or 0)
        while chunk := r.read(1 << 20):
            f.write(chunk)
            h.update(chunk)
            done += len(chunk)
            if progress:
                print(f"\r{dest.name}: {done / 1e6:.1f}/{total / 1e6:.1f} MB", end="", file=sys.stderr, flush=True)
        if progress:
            print(file=sys.stderr)
        if h.hexdigest() != sha256:
            raise DataError(f"{dest}: checksum mismatch downloading {url}: expected sha256 {sha256}, got {h.hexdigest()}")


def _mirror_base(mirror: str) -> str:
    """A URL, or a local directory (turned into a file:// URL)."""
    return mirror.rstrip("/") if "://" in mirror else Path(mirror).expanduser().resolve().as_uri()


def fetch(name: str, data_dir: str | Path | None = None, mirror: str | None = None, progress: bool = True) -> list[Path]:
    """Download the missing or invalid files of `name` into <data_dir>/<name>/; return all its file paths.

    Sources: `<mirror>/<name>/<relpath>` if a mirror is given (or $LATENTLAB_MIRROR), else the spec's
    URLs in order. A checksum mismatch raises DataError at once; other failures try the next URL."""
    spec, root = get_spec(name), resolve_data_dir(data_dir) / name
    mirror = mirror or os.environ.get("LATENTLAB_MIRROR")
    paths, errors = [], []
    for rel, sha in spec.files.items():
        dest = root / rel
        if dest.is_file() and sha256_file(dest) == sha:
            paths.append(dest)
            continue
        urls = [f"{_mirror_base(mirror)}/{name}/{rel}"] if mirror else spec.urls.get(rel, [])
        if not urls:
            errors.append(f"{dest}: no public download URL; pass --mirror URL or place the file there")
            continue
        last = ""
        for url in urls:
            try:
                _download(url, dest, sha, progress)
                paths.append(dest)
                break
            except (OSError, ValueError, http.client.HTTPException) as e:  # URLError is an OSError
                last = f"{url}: {e}"
        else:
            errors.append(f"{dest}: download failed ({last})")
    if errors:
        raise DataError("; ".join(errors))
    return paths
