"""Open a finished (or interrupted) run directory: its config, method and trained weights."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import torch

from ..config import build_config, load_yaml
from ..errors import ConfigError, LatentlabError
from ..methods.base import Method, get_method
from .checkpoint import load_checkpoint, load_state


def load_run_config(run_dir: str | Path, overrides: dict | None = None):
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.yaml"
    if not cfg_path.is_file():
        raise LatentlabError(f"{run_dir}: not a run directory (no config.yaml)")
    data = load_yaml(cfg_path)
    name = data.pop("method", None)
    if not name:
        raise LatentlabError(f"{cfg_path}: no 'method' key")
    cls = get_method(name)
    known = {f.name for f in fields(cls.Config)}
    for key in overrides or {}:
        if key not in known:
            raise ConfigError(f"unknown config key '{key}' in the key=value overrides for method '{name}' "
                              f"(known: {', '.join(sorted(known))})")
    return name, build_config(cls.Config, {**data, **(overrides or {})}, name, source=str(cfg_path))


class LocalFabric:
    """The part of Lightning Fabric a method uses, for one float32 CPU process that evaluates a run.

    Importing Lightning costs ~4 s of a fresh ``latentlab eval`` process, and building optimizers ~2 s more
    (their first use imports ``torch._dynamo``); evaluation needs neither (no DDP, no precision plugin, no
    updates), so a method set up on it has no optimizers. Training always runs under the real Fabric."""
    world_size, global_rank, local_rank = 1, 0, 0
    evaluation_only = True
    strategy = None                           # Method.differentiable / _with_precision: no precision plugin

    def __init__(self, device: str = "cpu"):
        self.device = torch.device(device)

    def setup_module(self, module):
        return module.to(self.device)


def load_run(run_dir: str | Path, overrides: dict | None = None, checkpoint: str | Path | None = None,
             fabric=None) -> Method:
    """Rebuild the run's method on one device and load its last checkpoint's weights (for evaluation: on a
    float32 CPU run it is set up on ``LocalFabric``, without optimizers)."""
    from .loop import make_fabric, seed_all
    run_dir = Path(run_dir)
    name, cfg = load_run_config(run_dir, {"devices": 1, "strategy": "auto", **(overrides or {})})
    seed_all(cfg.seed)
    method = get_method(name)(cfg)
    fabric = fabric or (LocalFabric() if cfg.device == "cpu" and cfg.precision == "32-true" else make_fabric(cfg))
    method.setup(fabric)
    method.run_dir = run_dir
    path = Path(checkpoint) if checkpoint else run_dir / "checkpoints" / "last.ckpt"
    state = load_checkpoint(path)
    load_state(lambda: method.load_state_dict(state["method"], weights_only=True), path,
               f"the networks of {run_dir / 'config.yaml'}")
    method.step = int(state["step"])
    return method
