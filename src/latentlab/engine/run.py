"""Open a finished (or interrupted) run directory: its config, method and trained weights.

The caller names the method class (the lookup by name, ``latentlab.methods.get_method``, is above the engine:
``latentlab.api.load_run`` does both)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import torch

from ..config import build_config, load_yaml
from ..errors import ConfigError, LatentlabError
from .method import Method
from .checkpoint import load_checkpoint, load_state


def run_method_name(run_dir: str | Path) -> str:
    """The method a run directory was trained with (its config.yaml's ``method``)."""
    cfg_path = Path(run_dir) / "config.yaml"
    if not cfg_path.is_file():
        raise LatentlabError(f"{run_dir}: not a run directory (no config.yaml)")
    name = load_yaml(cfg_path).get("method")
    if not name:
        raise LatentlabError(f"{cfg_path}: no 'method' key")
    return name


def run_config(cls: type[Method], run_dir: str | Path, overrides: dict | None = None):
    """The run's config.yaml as ``cls.Config``, with key=value ``overrides`` (unknown keys refused)."""
    cfg_path = Path(run_dir) / "config.yaml"
    name = run_method_name(run_dir)
    if name != cls.name:
        raise LatentlabError(f"{cfg_path}: run is of method '{name}', not '{cls.name}'")
    data = load_yaml(cfg_path)
    data.pop("method")
    known = {f.name for f in fields(cls.Config)}
    for key in overrides or {}:
        if key not in known:
            raise ConfigError(f"unknown config key '{key}' in the key=value overrides for method '{name}' "
                              f"(known: {', '.join(sorted(known))})")
    return build_config(cls.Config, {**data, **(overrides or {})}, name, source=str(cfg_path))


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


def open_run(cls: type[Method], run_dir: str | Path, overrides: dict | None = None,
             checkpoint: str | Path | None = None, fabric=None) -> Method:
    """Rebuild the run's method (class ``cls``) on one device and load its last checkpoint's weights (for
    evaluation: on a float32 CPU run it is set up on ``LocalFabric``, without optimizers). ``method.step``
    is the checkpoint's steps done."""
    from .loop import make_fabric, seed_all
    run_dir = Path(run_dir)
    cfg = run_config(cls, run_dir, {"devices": 1, "strategy": "auto", **(overrides or {})})
    seed_all(cfg.seed)
    method = cls(cfg)
    fabric = fabric or (LocalFabric() if cfg.device == "cpu" and cfg.precision == "32-true" else make_fabric(cfg))
    method.setup(fabric)
    method.run_dir = run_dir
    path = Path(checkpoint) if checkpoint else run_dir / "checkpoints" / "last.ckpt"
    state = load_checkpoint(path)
    load_state(lambda: method.load_state_dict(state["method"], weights_only=True), path,
               f"the networks of {run_dir / 'config.yaml'}")
    method.step = int(state["step"])
    return method
