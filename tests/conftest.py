"""Shared fixtures. Tests read real datasets from ../shared/data (skipped where absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
if SHARED_DATA.is_dir():
    os.environ.setdefault("LATENTLAB_DATA", str(SHARED_DATA))
os.environ.setdefault("MPLBACKEND", "Agg")
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


DATA = Path(os.environ.get("LATENTLAB_DATA", SHARED_DATA))


@pytest.fixture
def shared_data() -> Path:
    if not (DATA / "mnist").is_dir():
        pytest.skip(f"{DATA} holds no mnist/ (../shared/data or $LATENTLAB_DATA)")
    return DATA


def needs(dataset: str):
    """Skip marker for tests that read a real dataset from ../shared/data (or $LATENTLAB_DATA)."""
    return pytest.mark.skipif(not (DATA / dataset).is_dir(), reason=f"{DATA}/{dataset} absent")
