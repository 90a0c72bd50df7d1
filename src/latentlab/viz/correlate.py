"""Template matching by normalised cross-correlation: a filter response is w.p = |w| |p| cos(alpha),
so dividing by the norms leaves cos(alpha), which is 1 exactly where the patch p matches the
template w up to brightness scale (and ``zero_mean`` also removes an offset: Pearson correlation)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def ncc_map(image: torch.Tensor, template: torch.Tensor, zero_mean: bool = False, eps: float = 1e-8) -> torch.Tensor:
    """image (C, H, W), template (C, h, w) -> (H-h+1, W-w+1) map of cos(angle) between the template and
    every patch (all channels together), in [-1, 1]."""
    if image.dim() != 3 or template.dim() != 3 or image.shape[0] != template.shape[0]:
        raise ValueError(f"image {tuple(image.shape)} and template {tuple(template.shape)} must be (C, H, W) "
                         "with the same channels")
    if template.shape[1] > image.shape[1] or template.shape[2] > image.shape[2]:
        raise ValueError(f"template {tuple(template.shape)} is larger than the image {tuple(image.shape)}")
    x, w = image[None].double(), template[None].double()                  # (1, C, H, W), (1, C, h, w)
    ones = torch.ones_like(w)
    n = w.numel()
    if zero_mean:
        w = w - w.mean()
    dot = F.conv2d(x, w)[0, 0]                                            # sum w*p
    psum = F.conv2d(x, ones)[0, 0]
    psq = F.conv2d(x * x, ones)[0, 0]                                     # |p|^2
    if zero_mean:                                                         # |p - mean p|^2, and w sums to 0
        psq = psq - psum * psum / n
    pnorm = psq.clamp_min(0).sqrt()
    return (dot / (pnorm * w.norm()).clamp_min(eps)).float()


def peak(m: torch.Tensor) -> tuple[int, int]:
    """(row, col) of the map's maximum: the top-left corner of the best-matching patch."""
    i = int(m.argmax())
    return divmod(i, m.shape[1])


def correlate_figure(image: torch.Tensor, template: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle
    from .grid import figure_to_tensor
    show = lambda t: t[0] if t.shape[0] == 1 else t.permute(1, 2, 0)
    r, c = peak(m)
    h, w = template.shape[1:]
    fig, ax = plt.subplots(1, 3, figsize=(12, 4), gridspec_kw={"width_ratios": [3, 1, 3]})
    ax[0].imshow(show(image), cmap="gray", vmin=0, vmax=1)
    ax[0].add_patch(Rectangle((c - 0.5, r - 0.5), w, h, fill=False, ec="red", lw=2))
    ax[0].set_title("image (best match boxed)")
    ax[1].imshow(show(template), cmap="gray", vmin=0, vmax=1)
    ax[1].set_title("template w")
    im = ax[2].imshow(m, cmap="magma", vmin=float(m.min()), vmax=1)
    ax[2].plot([c], [r], "c+", ms=14, mew=2)
    ax[2].set_title(f"NCC = cos(w, p); max {float(m.max()):.3f} at ({r}, {c})")
    fig.colorbar(im, ax=ax[2], fraction=0.046)
    for a in ax:
        a.axis("off")
    fig.tight_layout()
    return figure_to_tensor(fig)
