"""Batched, on-device augmentation pipelines (kornia) for self-supervised learning.

Inputs and outputs are float images (B, C, H, W) in [0, 1]; every image of a batch gets its own random
parameters. Randomness comes from torch's global generator (which the engine checkpoints, so resume is
exact); ``seeded(pipe, x, seed)`` runs a pipeline reproducibly under a seed without disturbing it.

- ``simclr``: Chen et al. 2020, App. A: random resized crop (scale 0.08-1), horizontal flip, colour jitter
  (0.8 strength: 0.8, 0.8, 0.8, 0.2) with p = 0.8, grayscale p = 0.2, Gaussian blur p = 0.5.
- ``digits``: for digit images a flip changes the class (2 vs 5) and tiny crops lose the digit, so: crop
  scale 0.3-1, no flip, brightness/contrast jitter p = 0.8 (+ saturation/hue and grayscale p = 0.2 on
  colour images like MNIST-M), blur p = 0.5.
- ``digits_strong``: ``digits`` with the colour of the background made useless as a cue to match two
  views: any hue (jitter 0.5), saturation 1.0, channels shuffled p = 0.5, grayscale p = 0.5, and
  inversion p = 0.5 (an MNIST-M digit is the inverted background, so both polarities are digits).
- ``byol_pair``: Grill et al. 2020, Table 6: the two views differ in blur (p = 1.0 / 0.1) and solarisation
  (p = 0 / 0.2).
- ``multicrop``: Caron et al. 2021 (DINO): 2 global crops (scale 0.4-1, BYOL's asymmetric blur and
  solarisation) and ``n_local`` local crops (scale 0.05-0.4, blur p = 0.5).
"""

from __future__ import annotations

import torch
from torch import nn

PIPELINES = ("simclr", "digits", "digits_strong", "none")


def _k():
    import kornia.augmentation as K
    return K


def _pipe(size: tuple[int, int], channels: int, kind: str, scale: tuple[float, float] | None = None,
          blur_p: float = 0.5, solarize_p: float = 0.0) -> nn.Sequential:
    if kind not in PIPELINES:
        raise ValueError(f"unknown augmentation {kind!r} (known: {', '.join(PIPELINES)})")
    if kind == "none":
        return nn.Sequential()
    K = _k()
    colour = channels == 3
    h = size[0]
    kernel = max(3, (h // 10) | 1)                  # ~10% of the side, odd (SimCLR App. A)
    if kind == "simclr":
        ops = [K.RandomResizedCrop(size, scale=scale or (0.08, 1.0)), K.RandomHorizontalFlip(),
               K.ColorJitter(0.8, 0.8, 0.8 if colour else 0.0, 0.2 if colour else 0.0, p=0.8)]
    elif kind == "digits":
        ops = [K.RandomResizedCrop(size, scale=scale or (0.3, 1.0)),
               K.ColorJitter(0.4, 0.4, 0.4 if colour else 0.0, 0.1 if colour else 0.0, p=0.8)]
    else:  # digits_strong
        ops = [K.RandomResizedCrop(size, scale=scale or (0.3, 1.0)),
               K.ColorJitter(0.4, 0.4, 1.0 if colour else 0.0, 0.5 if colour else 0.0, p=0.8)]
        if colour:
            ops.append(K.RandomChannelShuffle(p=0.5))
        ops.append(K.RandomInvert(p=0.5))
    if colour:
        ops.append(K.RandomGrayscale(p=0.5 if kind == "digits_strong" else 0.2))
    if blur_p > 0:
        ops.append(K.RandomGaussianBlur((kernel, kernel), (0.1, 2.0), p=blur_p))
    if solarize_p > 0:
        ops.append(K.RandomSolarize(thresholds=0.0, additions=0.0, p=solarize_p))
    return nn.Sequential(*ops, _Clamp())


class _Clamp(nn.Module):
    def forward(self, x):
        return x.clamp_(0, 1)


def simclr(size, channels: int) -> nn.Sequential:
    return _pipe(tuple(size), channels, "simclr")


def digits(size, channels: int) -> nn.Sequential:
    return _pipe(tuple(size), channels, "digits")


def build(kind: str, size, channels: int, **kw) -> nn.Sequential:
    """One view pipeline: ``kind`` in PIPELINES."""
    return _pipe(tuple(size), channels, kind, **kw)


def byol_pair(kind: str, size, channels: int) -> tuple[nn.Sequential, nn.Sequential]:
    """BYOL's asymmetric pair of pipelines on top of ``kind``."""
    return (_pipe(tuple(size), channels, kind, blur_p=1.0, solarize_p=0.0),
            _pipe(tuple(size), channels, kind, blur_p=0.1, solarize_p=0.2))


def multicrop(kind: str, size, channels: int, n_local: int = 6, global_scale=(0.4, 1.0),
              local_scale=(0.05, 0.4), local_size=None) -> list[nn.Sequential]:
    """DINO's 2 global + ``n_local`` local crop pipelines (locals at ``local_size``, default full size)."""
    size = tuple(size)
    if kind == "digits":  # keep enough of a digit in every crop
        global_scale, local_scale = (max(global_scale[0], 0.5), 1.0), (max(local_scale[0], 0.2), 0.5)
    g1 = _pipe(size, channels, kind, scale=global_scale, blur_p=1.0)
    g2 = _pipe(size, channels, kind, scale=global_scale, blur_p=0.1, solarize_p=0.2)
    loc = _pipe(tuple(local_size or size), channels, kind, scale=local_scale, blur_p=0.5)
    return [g1, g2] + [loc] * n_local


@torch.no_grad()
def apply(pipe: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Run a pipeline on float images in [0, 1]: (B, C, H, W) -> (B, C, h, w), memory format kept."""
    if x.ndim != 4:
        raise ValueError(f"expected images (B, C, H, W), got {tuple(x.shape)}")
    cl = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    y = pipe(x.contiguous()) if len(pipe) else x.clone()
    return y.contiguous(memory_format=torch.channels_last) if cl else y


def seeded(pipe: nn.Module, x: torch.Tensor, seed: int) -> torch.Tensor:
    """``apply`` under a fixed seed, leaving the global generator as it was (reproducible views)."""
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        return apply(pipe, x)
