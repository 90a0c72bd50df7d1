"""Start a run from another run's weights: ``init_from=RUN_DIR[:MODULE[=TARGET]][:KEY_PREFIX]``.

    init_from=runs/sup                       every network of runs/sup into this method's network of the same name
    init_from=runs/sup:model                 only its ``model``
    init_from=runs/sup:model=backbone        its ``model`` into this method's ``backbone`` (transfer learning)
    init_from=runs/sup:model=backbone:features.   only the keys starting with ``features.``

The weights are read from the source's ``weights.safetensors`` (a finished run) or its last checkpoint, before
training starts (a resumed run has its own weights in its checkpoint). A key whose shape differs is refused
by name with both shapes; keys of the target that the source lacks keep their initialisation. The run records
the source, its step and file checksum and the keys loaded in ``init_from.json``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from ..errors import ConfigError
from ..modules import unwrap
from .checkpoint import load_checkpoint, split_weights


def parse_init_from(spec: str) -> tuple[Path, str | None, str | None, str]:
    """``RUN_DIR[:MODULE[=TARGET]][:KEY_PREFIX]`` -> (run dir, source module, target module, key prefix)."""
    parts = str(spec).split(":")
    run_dir, module, prefix = Path(parts[0]), parts[1] if len(parts) > 1 and parts[1] else None, ""
    if len(parts) > 2:
        prefix = parts[2]
    if len(parts) > 3:
        raise ConfigError(f"config key 'init_from' = {spec!r} is invalid: expected RUN_DIR[:MODULE[=TARGET]][:PREFIX]")
    target = module
    if module and "=" in module:
        module, target = module.split("=", 1)
    return run_dir, module, target, prefix


def _source_weights(run_dir: Path) -> tuple[dict[str, dict[str, torch.Tensor]], int, Path]:
    w = run_dir / "weights.safetensors"
    if w.is_file():
        from safetensors import safe_open
        from safetensors.torch import load_file
        with safe_open(str(w), "pt") as f:
            step = int((f.metadata() or {}).get("step", -1))
        return split_weights(load_file(str(w))), step, w
    ck = run_dir / "checkpoints" / "last.ckpt"
    if ck.is_file():
        state = load_checkpoint(ck)
        return state["method"]["modules"], int(state["step"]), ck
    raise ConfigError(f"config key 'init_from': {run_dir} holds no weights.safetensors and no checkpoints/last.ckpt")


def init_from(method, spec: str) -> dict:
    """Load the weights ``spec`` names into ``method``'s networks; returns the record of what was loaded (the
    loop writes it to ``init_from.json``)."""
    src_dir, module, target, prefix = parse_init_from(spec)
    if not src_dir.is_dir():
        raise ConfigError(f"config key 'init_from': {src_dir}: no such run directory")
    source, step, path = _source_weights(src_dir)
    mods = method.modules()
    pairs = [(module, target)] if module else [(m, m) for m in source if m in mods]
    if not pairs:
        raise ConfigError(f"config key 'init_from': {src_dir} has networks {sorted(source)}, none of which method "
                          f"'{method.name}' builds ({sorted(mods)}); name one as RUN_DIR:MODULE=TARGET")
    loaded: dict[str, list[str]] = {}
    for src, dst in pairs:
        if src not in source:
            raise ConfigError(f"config key 'init_from': {src_dir} has no network '{src}' (has {sorted(source)})")
        if dst not in mods:
            raise ConfigError(f"config key 'init_from': method '{method.name}' has no network '{dst}' "
                              f"(has {sorted(mods)})")
        net = unwrap(mods[dst])
        own = net.state_dict()
        take = {k: v for k, v in source[src].items() if k.startswith(prefix) and k in own}
        if not take:
            raise ConfigError(f"config key 'init_from': no key of {src_dir}:{src} starting with {prefix!r} matches "
                              f"a key of '{dst}'")
        for k, v in take.items():
            if tuple(v.shape) != tuple(own[k].shape):
                raise ConfigError(f"config key 'init_from': {src_dir}:{src} key '{k}' has shape {tuple(v.shape)}, "
                                  f"'{dst}' expects {tuple(own[k].shape)}")
        with torch.no_grad():
            for k, v in take.items():
                own[k].copy_(v)
        loaded[dst] = sorted(take)
    record = {"init_from": str(spec), "source": str(src_dir), "source_step": step, "file": str(path),
              "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
              "loaded": {dst: len(keys) for dst, keys in loaded.items()},
              "kept_initialisation": {dst: sorted(set(unwrap(mods[dst]).state_dict()) - set(keys))
                                      for dst, keys in loaded.items()}}
    return record
