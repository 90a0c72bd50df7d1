"""Image grids and PNG writing (no torchvision)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import LatentlabError
from ..fileio import atomic_open, not_a_directory


def make_grid(x: torch.Tensor, nrow: int | None = None, padding: int = 2, pad_value: float = 1.0) -> torch.Tensor:
    """(N, C, H, W) in [0, 1] -> (3, H', W') tiled grid, ``nrow`` images per row (default: square)."""
    x = x.detach().float().cpu()
    if x.dim() != 4:
        raise ValueError(f"make_grid expects (N, C, H, W), got shape {tuple(x.shape)}")
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    n, c, h, w = x.shape
    nrow = nrow or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / nrow)
    grid = torch.full((c, rows * (h + padding) + padding, nrow * (w + padding) + padding), pad_value)
    for i in range(n):
        r, col = divmod(i, nrow)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[:, top:top + h, left:left + w] = x[i]
    return grid


def labelled_rows(x: torch.Tensor, nrow: int, labels: list[str], scale: int = 2, padding: int = 2) -> torch.Tensor:
    """``make_grid(x, nrow)`` upscaled ``scale`` times with a text label left of each row (e.g. the training
    step of a progression strip, the class of a conditional grid) -> (3, H', W') in [0, 1]."""
    from PIL import ImageDraw
    grid = make_grid(x, nrow=nrow, padding=padding)
    im = Image.fromarray(to_uint8_hwc(grid))
    im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    draw = ImageDraw.Draw(im)
    margin = 8 + max(int(draw.textlength(t)) for t in labels) if labels else 0
    out = Image.new("RGB", (im.width + margin, im.height), "white")
    out.paste(im, (margin, 0))
    draw = ImageDraw.Draw(out)
    h = x.shape[2]
    for r, text in enumerate(labels):
        middle = scale * (padding + r * (h + padding) + h / 2)
        draw.text((4, middle - 6), text, fill="black")
    return torch.from_numpy(np.asarray(out).copy()).permute(2, 0, 1).float() / 255


def to_uint8_hwc(img: torch.Tensor) -> np.ndarray:
    """(C, H, W) float in [0, 1] -> (H, W, C) uint8."""
    img = img.detach().float().cpu().clamp(0, 1)
    arr = (img * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return arr[..., 0] if arr.shape[2] == 1 else arr


def save_image(img: torch.Tensor, path: str | Path, scale: int = 1) -> Path:
    """Save (C, H, W) or (N, C, H, W) (as a grid) in [0, 1] to PNG, optionally upscaled by ``scale``."""
    if img.dim() == 4:
        img = make_grid(img)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(to_uint8_hwc(img))
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    fmt = Image.registered_extensions().get(not_a_directory(path).suffix.lower())
    if fmt is None:
        raise LatentlabError(f"{path}: unknown image file suffix (use .png, .jpg, ...)")
    with atomic_open(path) as f:
        im.save(f, format=fmt)
    return path


def figure_to_tensor(fig) -> torch.Tensor:
    """A matplotlib figure -> (3, H, W) float tensor in [0, 1]; closes the figure."""
    import matplotlib.pyplot as plt
    fig.canvas.draw()
    arr = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return torch.from_numpy(arr).permute(2, 0, 1).float() / 255
