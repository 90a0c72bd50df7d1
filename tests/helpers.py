"""Small helpers shared by the test files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[1]


def cli(*args: str, check: bool = True, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``latentlab ARGS`` in a fresh interpreter (as a user would)."""
    e = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    p = subprocess.run([sys.executable, "-m", "latentlab.cli", *args], capture_output=True, text=True,
                       timeout=timeout, env=e, cwd=str(REPO))
    if check and p.returncode != 0:
        raise AssertionError(f"latentlab {' '.join(args)} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(Path(run_dir) / "weights.safetensors"))


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"weight {k} differs"
