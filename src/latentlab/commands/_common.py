"""Helpers shared by the inspection commands (viz, retrieve, ensemble): open a run, read a user image, write PNG + TensorBoard."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import DataError, LatentlabError


def open_run(run_dir: str):
    from ..api import load_run
    return load_run(run_dir)


def read_image(path: str, channels: int | None = None, size: tuple[int, int] | None = None) -> torch.Tensor:
    """A PNG/JPEG file -> uint8 (C, H, W); ``channels`` 1 or 3 converts, ``size`` (H, W) resizes."""
    from PIL import Image, UnidentifiedImageError
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{path}: no such image file")
    try:
        im = Image.open(p)
        im.load()
    except (UnidentifiedImageError, OSError) as e:
        raise DataError(f"{path}: not a readable image ({e})") from None
    if channels is None:
        channels = 1 if im.mode in ("L", "1", "I", "F", "LA") else 3
    im = im.convert("L" if channels == 1 else "RGB")
    if size is not None and (im.height, im.width) != tuple(size):
        im = im.resize((size[1], size[0]), Image.BILINEAR)
    a = np.asarray(im, dtype=np.uint8)
    a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
    return torch.from_numpy(a.copy())


def write_picture(img: torch.Tensor, out: str, run_dir: str | None = None, tag: str | None = None,
                  step: int = 0) -> Path:
    """Save (3, H, W) in [0, 1] to ``out`` and, for a run, also log it to the run's TensorBoard."""
    from ..viz.grid import save_image
    path = save_image(img, out)
    if run_dir is not None and tag is not None:
        from torch.utils.tensorboard import SummaryWriter
        w = SummaryWriter(str(Path(run_dir) / "tb"))
        try:
            w.add_image(tag, img.clamp(0, 1), step)
        finally:
            w.close()
    print(f"wrote {path}" + (f" (and TensorBoard tag '{tag}' in {Path(run_dir) / 'tb'})" if run_dir and tag else ""))
    return path


def parse_ints(s: str | None, what: str) -> list[int] | None:
    if s is None:
        return None
    try:
        return [int(t) for t in s.split(",") if t.strip()]
    except ValueError:
        raise LatentlabError(f"--{what} '{s}': expected comma-separated integers") from None
