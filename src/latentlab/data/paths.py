"""Where data and caches live (the ground of the data layer: every reader may import it)."""

from __future__ import annotations

import os
from pathlib import Path


def resolve_data_dir(data_dir: str | Path | None = None) -> Path:
    """Argument, else $LATENTLAB_DATA, else ~/.cache/latentlab/data."""
    d = data_dir or os.environ.get("LATENTLAB_DATA") or Path.home() / ".cache" / "latentlab" / "data"
    return Path(d).expanduser()


def resolve_cache_dir() -> Path:
    """$LATENTLAB_CACHE, else ~/.cache/latentlab/cache (decoded-array caches, safe to delete)."""
    d = os.environ.get("LATENTLAB_CACHE") or Path.home() / ".cache" / "latentlab" / "cache"
    return Path(d).expanduser()
