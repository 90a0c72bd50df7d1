"""What the layers respond to: every layer's feature maps for one input, and the dataset patches that
most excite chosen units of a deep layer (Zeiler & Fergus 2014; Krizhevsky et al. 2012).

Works on any encoder: forward hooks on every ``Conv2d`` and ``Linear`` (``named_modules`` names).
The patch of a unit at its strongest position is the bounding box of the input pixels its value
depends on (non-zero gradient), i.e. its effective receptive field on that image.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..eval.representation import find_module, get_encoder
from .grid import make_grid

LAYER_TYPES = (nn.Conv2d, nn.Linear)


def _full_forward(enc: nn.Module, x: torch.Tensor) -> torch.Tensor:
    f = enc.forward_features(x) if hasattr(enc, "forward_features") else enc(x)
    return enc.forward_head(f) if hasattr(enc, "forward_head") else f


@torch.no_grad()
def layer_activations(enc: nn.Module, x: torch.Tensor, layers: list[str] | None = None) -> list[tuple[str, torch.Tensor]]:
    """Outputs of every Conv2d/Linear (or the named ``layers``) for input ``x``, in execution order."""
    mods = [(n, m) for n, m in enc.named_modules() if (isinstance(m, LAYER_TYPES) if layers is None else n in layers)]
    if layers is not None:
        for n in layers:
            find_module(enc, n)
    got: list[tuple[str, torch.Tensor]] = []
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: got.append((n, o.detach().float().cpu())))
             for n, m in mods]
    was = enc.training
    enc.eval()
    try:
        _full_forward(enc, x)
    finally:
        for h in hooks:
            h.remove()
        enc.train(was)
    return got


def maps_grid(a: torch.Tensor, max_maps: int = 32) -> torch.Tensor:
    """One sample's activation: (C, h, w) -> grid of its first ``max_maps`` maps (``activations_figure`` draws a
    1-D layer as bars instead); (F,) -> a square image, its padding at the layer's minimum.
    Scaled by the layer's own range so weak and dead units stay visible as such. -> (h', w') in [0, 1], the
    padding between maps NaN (drawn as background, not as a value)."""
    if a.dim() == 1:
        side = math.ceil(math.sqrt(a.numel()))
        a = F.pad(a, (0, side * side - a.numel()), value=float("nan")).view(1, 1, side, side)
    else:
        a = a[:max_maps, None]                                          # (n, 1, h, w)
    lo, hi = a.nan_to_num(float("inf")).min(), a.nan_to_num(float("-inf")).max()
    a = (a - lo) / (hi - lo).clamp_min(1e-12)
    scale = max(1, math.ceil(16 / a.shape[-1]))
    a = F.interpolate(a, scale_factor=scale, mode="nearest")
    return make_grid(a, nrow=min(len(a), 8), padding=1, pad_value=float("nan"))[0]


def activations_figure(image: torch.Tensor, acts: list[tuple[str, torch.Tensor]], max_maps: int = 32,
                       title: str = "") -> torch.Tensor:
    """Input (C, H, W) in [0, 1] and per-layer activations (1, ...) -> (3, H', W') picture."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from .grid import figure_to_tensor
    n = len(acts) + 1
    cols = 2
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 2.6 * rows), squeeze=False)
    img = image.detach().float().cpu()
    axes[0][0].imshow(img[0] if img.shape[0] == 1 else img.permute(1, 2, 0), cmap="gray", vmin=0, vmax=1)
    axes[0][0].set_title(title or "input", fontsize=9)
    axes[0][0].axis("off")
    for i, (name, a) in enumerate(acts, start=1):
        ax = axes[i // cols][i % cols]
        shape = "x".join(str(s) for s in a.shape[1:])
        ax.set_title(f"{name}  ({shape})", fontsize=8)
        v = a[0].flatten() if a[0].dim() != 3 else None
        if v is not None:          # a 1-D layer (FC, logits): one bar per unit, the value on a real axis
            ax.bar(range(len(v)), v.numpy(), width=1.0, color=["tab:blue" if x >= 0 else "tab:red" for x in v])
            ax.axhline(0, color="black", lw=0.5)
            ax.set_xlim(-0.5, len(v) - 0.5)
            ax.set_xlabel("unit", fontsize=7)
            ax.set_ylabel("activation", fontsize=7)
            ax.tick_params(labelsize=6)
            continue
        shown = a[0][:max_maps]                                 # the maps maps_grid draws
        lo, hi = float(shown.min()), float(shown.max())
        cmap = plt.get_cmap("viridis").with_extremes(bad="white")   # NaN: the padding between maps
        im = ax.imshow(lo + (hi - lo) * maps_grid(a[0], max_maps), cmap=cmap, vmin=lo, vmax=hi,
                       interpolation="nearest")
        fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02).ax.tick_params(labelsize=6)
        ax.axis("off")
    for ax in axes.flat[n:]:
        ax.axis("off")
    fig.tight_layout()
    return figure_to_tensor(fig)


@torch.no_grad()
def unit_scores(enc: nn.Module, x: torch.Tensor, layer: str) -> torch.Tensor:
    """(N, ...) inputs -> the layer's outputs (N, C, h, w) or (N, F)."""
    return layer_activations(enc, x, [layer])[0][1]


def receptive_box(enc: nn.Module, x: torch.Tensor, layer: str, unit: int, pos: tuple[int, int] | None):
    """Bounding box (y0, y1, x0, x1) of the pixels of ``x`` (1, C, H, W) that unit ``unit`` at ``pos`` depends on."""
    mod = find_module(enc, layer)
    out = []
    h = mod.register_forward_hook(lambda m, i, o: out.append(o))
    x = x.clone().requires_grad_(True)
    try:
        with torch.enable_grad():
            _full_forward(enc, x)
            o = out[0][0, unit] if pos is None else out[0][0, unit, pos[0], pos[1]]
            (g,) = torch.autograd.grad(o, x)
    finally:
        h.remove()
    support = g[0].abs().sum(0) > 0                                    # (H, W)
    if not support.any():
        return 0, x.shape[2], 0, x.shape[3]
    ys, xs = support.any(1).nonzero()[:, 0], support.any(0).nonzero()[:, 0]
    return int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1


def top_patches(method, images: torch.Tensor, layer: str, units: list[int], k: int = 8, size: int = 32,
                batch_size: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """For each unit, the ``k`` dataset images that excite it most, cropped to its receptive field.

    -> patches (len(units)*k, 3, size, size) in [0, 1] (row per unit) and their scores (len(units), k)."""
    enc = get_encoder(method)
    was = enc.training
    enc.eval()
    try:
        scores, where = [], []
        for i in range(0, len(images), batch_size):
            a = unit_scores(enc, method.prepare_eval(images[i:i + batch_size]), layer)
            if a.dim() == 4:
                flat = a.flatten(2)                                     # (B, C, h*w)
                v, p = flat.max(2)
                scores.append(v), where.append(p)
                w = a.shape[3]
            else:
                scores.append(a.flatten(1)), where.append(torch.zeros_like(a.flatten(1), dtype=torch.long))
                w = None
        scores, where = torch.cat(scores), torch.cat(where)             # (N, C)
        bad = [u for u in units if not 0 <= u < scores.shape[1]]
        if bad:
            from ..errors import LatentlabError
            raise LatentlabError(f"unit(s) {bad} out of range: layer '{layer}' has {scores.shape[1]} units")
        tiles, top_scores = [], []
        for u in units:
            v, idx = scores[:, u].topk(min(k, len(images)))
            top_scores.append(v)
            for n in idx.tolist():
                x = method.prepare_eval(images[n:n + 1])
                pos = None if w is None else divmod(int(where[n, u]), w)
                y0, y1, x0, x1 = receptive_box(enc, x, layer, u, pos)
                patch = x[:, :, y0:y1, x0:x1].detach().float().cpu()
                patch = patch.expand(-1, 3, -1, -1) if patch.shape[1] == 1 else patch[:, :3]
                tiles.append(F.interpolate(patch, size=(size, size), mode="bilinear", align_corners=False)[0])
    finally:
        enc.train(was)
    return torch.stack(tiles).clamp(0, 1), torch.stack(top_scores)
