"""Small helpers shared by the test files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[1]

SSL_METHODS = ["simclr", "moco", "byol", "barlow_twins", "rotnet", "npid", "dino", "s4l", "jigsaw", "context",
               "deepcluster", "pirl", "temporal_order", "egomotion", "autoencoder"]
SSL_TINY = {  # small heads, queues and banks for quick runs
    "simclr": dict(proj_hidden=32), "moco": dict(queue_size=64, proj_hidden=32, momentum=0.9),
    "byol": dict(proj_hidden=32, proj_dim=16), "barlow_twins": dict(proj_dims=[32, 32]), "rotnet": {},
    "npid": dict(num_negatives=64), "dino": dict(out_dim=32, head_hidden=32, bottleneck=16, n_local=2),
    "s4l": dict(labels_per_class=2, labeled_batch_size=8), "jigsaw": dict(num_permutations=8, hidden=32),
    "context": dict(hidden=32), "deepcluster": dict(num_clusters=8, reassign_every=4, cluster_samples=200),
    "pirl": dict(num_negatives=64), "temporal_order": dict(eval_clips=64),
    "egomotion": dict(hidden=32, eval_pairs=64), "autoencoder": dict(decoder_hidden=32)}


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
