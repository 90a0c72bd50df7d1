"""A timm-style registry of networks: ``create(name, **kwargs)``, ``list_nets()``.

Each entry carries an ``example`` that builds a small instance and a matching input, so the test
suite can check shapes and gradients of every registered network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ..errors import ConfigError


@dataclass
class NetEntry:
    name: str
    factory: Callable[..., nn.Module]
    example: Callable[[], tuple[dict, tuple[torch.Tensor, ...]]]  # -> (kwargs, inputs)
    kind: str  # "backbone" | "generator" | "discriminator" | "head" | ...


NETS: dict[str, NetEntry] = {}


def register(name: str, *, example, kind: str = "backbone"):
    def deco(factory):
        if name in NETS:
            raise ValueError(f"network {name!r} registered twice")
        NETS[name] = NetEntry(name, factory, example, kind)
        return factory
    return deco


def create(name: str, **kwargs) -> nn.Module:
    if name not in NETS:
        raise ConfigError(f"unknown network '{name}' (known: {', '.join(sorted(NETS))})")
    return NETS[name].factory(**kwargs)


def list_nets(kind: str | None = None) -> list[str]:
    return sorted(n for n, e in NETS.items() if kind is None or e.kind == kind)
