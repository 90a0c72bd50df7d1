"""Open a finished (or interrupted) run directory: its config, method and trained weights."""

from __future__ import annotations

from pathlib import Path

from ..config import build_config, load_yaml
from ..errors import LatentlabError
from ..methods.base import Method, get_method
from .checkpoint import load_checkpoint


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
    data.update(overrides or {})
    return name, build_config(cls.Config, data, name, source=str(cfg_path))


def load_run(run_dir: str | Path, overrides: dict | None = None, checkpoint: str | Path | None = None,
             fabric=None) -> Method:
    """Rebuild the run's method on one device and load its last checkpoint's weights."""
    from .loop import make_fabric, seed_all
    run_dir = Path(run_dir)
    name, cfg = load_run_config(run_dir, {"devices": 1, "strategy": "auto", **(overrides or {})})
    seed_all(cfg.seed)
    method = get_method(name)(cfg)
    fabric = fabric or make_fabric(cfg)
    method.setup(fabric)
    method.run_dir = run_dir
    state = load_checkpoint(Path(checkpoint) if checkpoint else run_dir / "checkpoints" / "last.ckpt")
    method.load_state_dict(state["method"], weights_only=True)
    method.step = int(state["step"])
    return method
