"""Atomic full-state checkpoints, loaded with ``torch.load(weights_only=True)``.

A checkpoint is one header line ``latentlab-checkpoint sha256=<hex>`` and then ``torch.save``'s bytes; the
checksum is verified before anything is unpickled. It holds every network, optimizer, scheduler and method
buffer (``Method.state_dict``), the data-stream position, the step and the RNG states of python, numpy and
torch, so that a resumed run continues bit-for-bit.
"""

from __future__ import annotations

import hashlib
import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import LatentlabError, describe_exception
from ..fileio import save_safetensors, torch_load_weights, write_bytes


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


MAGIC = b"latentlab-checkpoint sha256="


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """One header line with the SHA-256 of the payload, then ``torch.save``'s bytes: a byte flipped or a file
    cut short anywhere is refused on load (torch's zip reader misses most flips inside tensor data)."""
    buf = io.BytesIO()
    torch.save(state, buf)
    payload = buf.getvalue()
    header = MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n"
    write_bytes(path, header + payload)


def load_checkpoint(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise LatentlabError(f"{path}: no checkpoint found")
    with open(path, "rb") as f:
        head = f.read(len(MAGIC) + 65)
    if head.startswith(MAGIC):
        raw = path.read_bytes()
        digest, payload = raw[len(MAGIC):len(MAGIC) + 64], raw[len(MAGIC) + 65:]
        if len(raw) < len(MAGIC) + 65 or raw[len(MAGIC) + 64:len(MAGIC) + 65] != b"\n" or \
                hashlib.sha256(payload).hexdigest().encode() != digest:
            raise LatentlabError(f"{path}: corrupt checkpoint (its SHA-256 does not match its content: "
                                 f"truncated or altered)")
        state = torch_load_weights(io.BytesIO(payload), "checkpoint", where=path)
    else:                                       # a plain torch.save file (checkpoints of earlier versions)
        state = torch_load_weights(path, "checkpoint")
    if not isinstance(state, dict) or not {"step", "method", "rng"} <= set(state):
        raise LatentlabError(f"{path}: not a latentlab checkpoint (no step, method and rng entries)")
    return state


# what loading a state that does not fit raises (a shape, a missing key, a wrong type, an attribute it lacks)
STATE_ERRORS = (RuntimeError, KeyError, ValueError, TypeError, IndexError, AttributeError)


def load_state(load, path: Path, what: str) -> None:
    """``load()`` (a ``load_state_dict`` of saved state), a state that does not fit refused as one line naming
    ``path`` and ``what`` it was loaded into."""
    try:
        load()
    except STATE_ERRORS as e:
        raise LatentlabError(f"{path}: does not fit {what} ({describe_exception(e)})") from None


def save_weights(path: Path, modules: dict[str, dict[str, torch.Tensor]], metadata: dict[str, str]) -> None:
    """All networks' weights in one safetensors file, keys ``<network>.<param>`` (atomic, byte-deterministic)."""
    flat = {f"{m}.{k}": v.detach().clone() for m, sd in modules.items() for k, v in sd.items()
            if isinstance(v, torch.Tensor)}     # copies: safetensors refuses tensors that share memory (tied weights)
    save_safetensors(path, flat, metadata)


def split_weights(flat: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    out: dict[str, dict[str, torch.Tensor]] = {}
    for key, v in flat.items():
        m, k = key.split(".", 1)
        out.setdefault(m, {})[k] = v
    return out
