"""Atomic file writes: a crash, an exception or a bad checksum never leaves half a file behind."""

from __future__ import annotations

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


@contextmanager
def atomic_open(path: str | Path, suffix: str = ".tmp"):
    """Write ``path`` through a uniquely named temporary file in the same directory.

    On a clean exit the file is flushed, fsync'ed and moved into place with ``os.replace``; if the
    block raises (e.g. a checksum mismatch) the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
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
