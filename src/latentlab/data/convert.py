"""Bring images of one domain to another's input: channels by luma (RGB -> grey) or repetition (grey -> RGB),
size by bilinear resizing (antialiased when shrinking). Transfer (``finetune``) maps target images to the
source encoder's input; domain adaptation maps both domains to the task's common input (``methods/_domain.py``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ConfigError

LUMA = (0.299, 0.587, 0.114)                     # ITU-R BT.601, as PIL's convert("L")


def to_shape(x: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """float (B, C, H, W) -> (B, C', H', W') = ``shape``."""
    c, h, w = shape
    if x.shape[1] != c:
        if x.shape[1] == 3 and c == 1:
            x = (x * torch.tensor(LUMA, device=x.device, dtype=x.dtype)[:, None, None]).sum(1, keepdim=True)
        elif x.shape[1] == 1:
            x = x.expand(-1, c, -1, -1)
        else:
            raise ConfigError(f"cannot map {x.shape[1]}-channel images to {c} channels")
    if tuple(x.shape[-2:]) != (h, w):
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=x.shape[-1] > w)
    return x


def convert_uint8(images: torch.Tensor, shape: tuple[int, int, int], batch: int = 4096) -> torch.Tensor:
    """uint8 (N, C, H, W) -> uint8 (N, *shape), converted once (rounded back to 8 bits) so that a method's
    streams stay uint8 and cheap; unchanged (the same tensor) when the shape already matches."""
    if tuple(images.shape[1:]) == tuple(shape):
        return images
    out = torch.empty(len(images), *shape, dtype=torch.uint8)
    for i in range(0, len(images), batch):
        x = to_shape(images[i:i + batch].float() / 255, shape)
        out[i:i + batch] = (x * 255).round_().clamp_(0, 255).to(torch.uint8)
    return out
