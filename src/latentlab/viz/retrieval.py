"""The retrieval panel: each query beside its nearest training images in feature space and in pixel space."""

from __future__ import annotations

import torch
import torch.nn.functional as F

GREEN, RED = torch.tensor([0.1, 0.75, 0.2]), torch.tensor([0.9, 0.1, 0.1])


def _rgb(x: torch.Tensor) -> torch.Tensor:
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def _framed(img: torch.Tensor, colour: torch.Tensor | None, border: int) -> torch.Tensor:
    """(3, H, W) -> (3, H+2b, W+2b) with a coloured (or white) frame."""
    c = colour if colour is not None else torch.ones(3)
    out = c.view(3, 1, 1).expand(3, img.shape[1] + 2 * border, img.shape[2] + 2 * border).clone()
    out[:, border:-border, border:-border] = img
    return out


def retrieval_panel(queries: torch.Tensor, q_labels: torch.Tensor, feat_nn: torch.Tensor, pix_nn: torch.Tensor,
                    gallery: torch.Tensor, g_labels: torch.Tensor, size: int = 48, border: int = 3,
                    gap: int = 16) -> torch.Tensor:
    """(Q, C, H, W) uint8 queries and (Q, k) neighbour indices into ``gallery`` -> (3, H', W') picture.

    Row q: query | k nearest in feature space | gap | k nearest in pixel space; each neighbour framed
    green where its class matches the query's, red where it does not."""
    def tile(x):                                                         # uint8 (C,H,W) -> (3,size,size)
        x = _rgb(x[None].float() / 255)
        return F.interpolate(x, size=(size, size), mode="nearest")[0]
    cell = size + 2 * border
    q, k = feat_nn.shape
    width = cell * (1 + 2 * k) + 2 * gap
    rows = []
    for i in range(q):
        row = torch.ones(3, cell, width)
        row[:, :, :cell] = _framed(tile(queries[i]), torch.zeros(3), border)
        for j, nn_idx in enumerate((feat_nn[i], pix_nn[i])):
            x0 = cell + gap + j * (k * cell + gap)
            for t, g in enumerate(nn_idx.tolist()):
                col = GREEN if g_labels[g] == q_labels[i] else RED
                row[:, :, x0 + t * cell:x0 + (t + 1) * cell] = _framed(tile(gallery[g]), col, border)
        rows.append(row)
    sep = torch.ones(3, 4, width)
    return torch.cat([r for row in rows for r in (row, sep)][:-1], dim=1)


def annotate_panel(panel: torch.Tensor, k: int, cell: int, gap: int, title: str = "") -> torch.Tensor:
    """Add a header line ("query | feature space | pixel space") with matplotlib-free PIL text."""
    from PIL import Image, ImageDraw
    import numpy as np
    h = 18
    img = Image.new("RGB", (panel.shape[2], panel.shape[1] + h), "white")
    img.paste(Image.fromarray((panel.permute(1, 2, 0).clamp(0, 1) * 255).round().byte().numpy()), (0, h))
    d = ImageDraw.Draw(img)
    d.text((2, 3), "query", fill="black")
    d.text((cell + gap + 2, 3), f"{k} nearest: feature space {title}".strip(), fill="black")
    d.text((cell + 2 * gap + k * cell + 2, 3), f"{k} nearest: pixel space", fill="black")
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float() / 255
