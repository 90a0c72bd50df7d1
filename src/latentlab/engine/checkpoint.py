"""Atomic full-state checkpoints, loaded with ``torch.load(weights_only=True)``.

A checkpoint holds every network, optimizer, scheduler and method buffer (``Method.state_dict``),
the data-stream position, the step and the RNG states of python, numpy and torch, so that a resumed
run continues bit-for-bit.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from ..errors import LatentlabError
from ..fileio import atomic_open


def rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    py = random.getstate()
    state = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def atomic_write(path: Path, write) -> None:
    """``write(f)`` into a temporary file, fsync, then ``os.replace``: a crash never leaves half a file."""
    with atomic_open(path) as f:
        write(f)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise LatentlabError(f"{path}: no checkpoint found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt/truncated file or disallowed pickle content
        raise LatentlabError(f"{path}: cannot read checkpoint ({type(e).__name__}: {str(e).splitlines()[0]})") from None


def save_weights(path: Path, modules: dict[str, dict[str, torch.Tensor]], metadata: dict[str, str]) -> None:
    """All networks' weights in one safetensors file, keys ``<network>.<param>``."""
    flat = {f"{m}.{k}": v.detach().cpu().clone().contiguous() for m, sd in modules.items() for k, v in sd.items()
            if isinstance(v, torch.Tensor)}
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    save_file(flat, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def split_weights(flat: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    out: dict[str, dict[str, torch.Tensor]] = {}
    for key, v in flat.items():
        m, k = key.split(".", 1)
        out.setdefault(m, {})[k] = v
    return out
