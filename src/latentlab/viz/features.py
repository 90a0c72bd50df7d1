"""Descriptors of any run with an encoder: inputs as its method prepares them, any layer by name."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import LatentlabError


def get_encoder(method) -> nn.Module:
    from ..methods.base import unwrap
    enc = method.encoder()
    if enc is None:
        raise LatentlabError(f"method '{method.name}' has no encoder (encoder() returns None): "
                             "nothing to inspect")
    return unwrap(enc)


def encoder_inputs(method, x_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 images -> the encoder's input: the method's ``prepare_eval`` (e.g. a centre crop) if it has
    one, else ``prepare_images`` (float in [0, 1] on the device)."""
    prep = method.prepare_eval
    return prep(x_uint8)


def find_module(model: nn.Module, layer: str) -> nn.Module:
    mods = dict(model.named_modules())
    if layer not in mods or layer == "":
        names = [n for n in mods if n]
        raise LatentlabError(f"layer '{layer}' not found; layers: {', '.join(names)}")
    return mods[layer]


@torch.no_grad()
def descriptors(method, images: torch.Tensor, layer: str | None = None, batch_size: int = 500) -> torch.Tensor:
    """uint8 (N, C, H, W) -> (N, F) float CPU descriptors: ``forward_features`` (the penultimate layer) or
    the flattened output of the module named ``layer`` (``named_modules`` name), in eval mode."""
    enc = get_encoder(method)
    was = enc.training
    enc.eval()
    out, grabbed = [], []
    hook = None
    if layer is not None:
        hook = find_module(enc, layer).register_forward_hook(lambda m, i, o: grabbed.append(o))
    try:
        for i in range(0, len(images), batch_size):
            x = encoder_inputs(method, images[i:i + batch_size])
            if layer is None:
                f = enc.forward_features(x)
            else:
                grabbed.clear()
                enc(x) if not hasattr(enc, "forward_features") else _run_to(enc, x, grabbed)
                f = grabbed[0]
            out.append(f.flatten(1).float().cpu())
    finally:
        if hook is not None:
            hook.remove()
        enc.train(was)
    return torch.cat(out)


def _run_to(enc: nn.Module, x: torch.Tensor, grabbed: list) -> None:
    """Run features first (enough for most layers), the full forward only if the hook did not fire."""
    enc.forward_features(x)
    if not grabbed:
        enc(x)


def pixels(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) -> (N, C*H*W) float in [0, 1]: the pixel-space descriptor."""
    return images.flatten(1).float() / 255
