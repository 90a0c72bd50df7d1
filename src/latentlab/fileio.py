"""Every file the project writes goes through here: atomic (a crash, an exception or a bad checksum never
leaves half a file behind), strict JSON, deterministic safetensors.

The one exception is an append-only log (``metrics.jsonl``): each record is one appended line, and its
readers drop a torn last line (a process killed mid-write) instead of failing on it."""

from __future__ import annotations

import json
import math
import os
import secrets
from contextlib import contextmanager
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (best effort: not every filesystem allows it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def not_a_directory(path: str | Path) -> Path:
    """``path``, or a LatentlabError when it names an existing directory (a file is about to be written there)."""
    path = Path(path)
    if path.is_dir():
        from .errors import LatentlabError
        raise LatentlabError(f"{path}: is a directory, not a file name")
    return path


@contextmanager
def atomic_open(path: str | Path, suffix: str = ".tmp"):
    """Write ``path`` through a uniquely named temporary file in the same directory.

    On a clean exit the file is flushed, fsync'ed and moved into place with ``os.replace``; if the
    block raises (e.g. a checksum mismatch) the temporary file is removed and ``path`` is untouched.
    """
    path = not_a_directory(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{suffix}")
    try:
        with open(tmp, "xb") as f:  # (not mkstemp: keep the umask's permissions)
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def write_bytes(path: str | Path, data: bytes) -> Path:
    """``path`` <- ``data``, atomically (see ``atomic_open``)."""
    with atomic_open(path) as f:
        f.write(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def finite_json(obj, where: str = "", found: dict | None = None):
    """``obj`` with every non-finite float replaced by ``None``; ``found`` collects ``{key path: 'inf'|'-inf'|'nan'}``.

    Strict JSON has no Infinity or NaN (Python's ``json`` writes them, most other parsers refuse them), so the
    project writes ``null`` and records what the value was beside it (``non_finite`` in eval.json's protocol)."""
    if not isinstance(obj, (bool, int, float, str)) and getattr(obj, "ndim", None) == 0 and hasattr(obj, "item"):
        obj = obj.item()                       # numpy / torch scalars as Python numbers
    if isinstance(obj, float) and not math.isfinite(obj):
        if found is not None:
            found[where or "value"] = repr(obj)
        return None
    if isinstance(obj, dict):
        return {k: finite_json(v, f"{where}.{k}" if where else str(k), found) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v, f"{where}[{i}]", found) for i, v in enumerate(obj)]
    return obj


def dumps(obj, **kw) -> str:
    """Strict JSON (non-finite floats as ``null``, see ``finite_json``); ``default=str`` for paths and the like."""
    return json.dumps(finite_json(obj), allow_nan=False, default=str, **kw)


def write_json(path: str | Path, obj, indent: int | None = 2) -> Path:
    return write_text(path, dumps(obj, indent=indent) + "\n")


def save_safetensors(path: str | Path, tensors: dict, metadata: dict[str, str] | None = None) -> Path:
    """A safetensors file, atomically and byte-deterministic: equal tensors and metadata give equal bytes.

    ``safetensors`` orders its JSON header (tensor entries and ``__metadata__``) by a hash map whose order
    differs between processes; the header is rewritten with sorted keys (the data section, already ordered
    by dtype and name, and the offsets into it are unchanged), padded with spaces to 8 bytes as the format asks."""
    from safetensors.torch import save
    raw = save({k: v.detach().cpu().contiguous() for k, v in tensors.items()},
               metadata={str(k): str(v) for k, v in (metadata or {}).items()} or None)
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    if "__metadata__" in header:
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return write_bytes(path, len(text).to_bytes(8, "little") + text + raw[8 + n:])


def save_figure(fig, path: str | Path, **kw) -> Path:
    """``fig.savefig`` through ``atomic_open`` (the format from the suffix)."""
    path = not_a_directory(path)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in fig.canvas.get_supported_filetypes():
        from .errors import LatentlabError
        raise LatentlabError(f"{path}: unknown image file suffix (use .png, .pdf, .svg, ...)")
    with atomic_open(path) as f:
        fig.savefig(f, format=fmt, **kw)
    return path


def torch_load_weights(path, what: str = "checkpoint", where: str | Path | None = None, error=None):
    """``torch.load(path, weights_only=True)`` on the CPU, or a LatentlabError naming the file: a file with
    pickled objects other than tensors and plain containers is refused (loading it could run arbitrary code,
    so no advice to load it otherwise is given), as is a truncated or corrupt one. ``path``: a file or a
    file object (then ``where`` names it in messages); ``error``: the LatentlabError subclass raised."""
    import torch

    from .errors import LatentlabError, describe_exception
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:                                  # noqa: BLE001 - every failure becomes one line
        msg = str(e)
        if "Weights only load failed" in msg or "weights_only" in msg:
            why = "refused: it holds pickled objects other than tensors and plain containers, or is corrupt"
        else:
            why = describe_exception(e)
        raise (error or LatentlabError)(f"{where or path}: cannot read {what} ({why})") from None
