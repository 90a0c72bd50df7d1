"""Descriptors of any run with an encoder: inputs as its method prepares them, any layer by name."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import LatentlabError
from ..eval.representation import extract


def get_encoder(method) -> nn.Module:
    from ..methods.base import unwrap
    enc = method.encoder()
    if enc is None:
        raise LatentlabError(f"method '{method.name}' has no encoder (encoder() returns None): "
                             "nothing to inspect")
    return unwrap(enc)


@torch.no_grad()
def descriptors(method, images: torch.Tensor, layer: str | None = None, batch_size: int = 500) -> torch.Tensor:
    """uint8 (N, C, H, W) -> (N, F) float CPU descriptors of a run's encoder on its eval inputs:
    ``forward_features`` (the penultimate layer) by default, else ``eval.representation.extract``'s
    ``layer`` (``maps`` or any ``named_modules`` name, flattened)."""
    return extract(get_encoder(method), images, method.prepare_eval, batch_size, layer=layer or "features")


def pixels(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) -> (N, C*H*W) float in [0, 1]: the pixel-space descriptor."""
    return images.flatten(1).float() / 255
