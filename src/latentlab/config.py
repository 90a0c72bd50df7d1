"""Typed, validated dataclass configs: defaults < YAML file < dotted ``key=value`` overrides.

Every method's config is a dataclass deriving from :class:`TrainConfig`. Its field defaults are the
paper's defaults; ``param(...)`` attaches a help string and range checks that :func:`validate`
enforces, so a bad value fails before any file is written, with a one-line error naming the key.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError


def param(default: Any = dataclasses.MISSING, *, help: str = "", ge=None, gt=None, le=None,
          lt=None, choices=None, default_factory: Any = dataclasses.MISSING):
    """A config field with a help string and range/choice constraints checked by ``validate``."""
    meta = dict(help=help, ge=ge, gt=gt, le=le, lt=lt, choices=choices)
    if default_factory is not dataclasses.MISSING:
        return field(default_factory=default_factory, metadata=meta)
    if isinstance(default, (list, dict, set)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    """Keys common to every method. Methods override the defaults with their paper's values."""

    dataset: str = param("digits", help="dataset name (latentlab data list) or a path to an idx dir / image folder")
    steps: int = param(1000, ge=1, help="number of training steps (generator steps for GANs)")
    batch_size: int = param(64, ge=1, help="global batch size (split across processes)")
    lr: float = param(1e-3, gt=0, help="learning rate")
    seed: int = param(0, ge=0, help="random seed (python, numpy, torch, data order)")
    device: str = param("cpu", choices=("cpu", "cuda", "gpu", "mps", "auto"), help="accelerator")
    devices: int = param(1, ge=1, help="number of devices/processes")
    strategy: str = param("auto", choices=("auto", "ddp", "ddp_spawn"), help="Fabric strategy")
    precision: str = param("32-true", choices=("32-true", "64-true", "16-mixed", "bf16-mixed", "bf16-true"),
                           help="Fabric precision")
    channels_last: bool = param(True, help="channels_last memory format for conv nets (1.2-1.4x on CPU)")
    compile: bool = param(False, help="torch.compile the trainable networks (dynamic=False)")
    data_dir: str | None = param(None, help="data directory (else $LATENTLAB_DATA, else ~/.cache/latentlab/data)")
    log_every: int = param(50, ge=1, help="steps between metric log lines")
    ckpt_every: int = param(1000, ge=0, help="steps between periodic checkpoints (0: only last.ckpt)")
    image_every: int = param(500, ge=0, help="steps between image grids (0: off)")
    eval_at_end: bool = param(True, help="run the method's evaluation when training ends")
    max_seconds: float | None = param(None, gt=0, help="stop training after this wall time (benchmarks' CPU budget)")
    init_from: str | None = param(None, help="start from another run's weights: RUN_DIR[:MODULE[=TARGET]][:KEY_PREFIX] "
                                             "(engine/init_from.py; recorded in init_from.json)")

    def __post_init__(self):
        validate(self)

    def check(self) -> None:
        """Cross-field checks; subclasses raise ConfigError via ``require``."""


# Keys a resumed run may change (``latentlab train M --resume RUN key=value``): the length of training and
# the cadence of logs, pictures, checkpoints and monitors, the data location and speed switches. Every other
# key defines what the checkpoint holds or how it was trained (a network's shape, the learning rate, which
# the optimizer state carries, the seed, the data), so a resume refuses to change it.
RESUMABLE_KEYS = ("steps", "max_seconds", "log_every", "ckpt_every", "image_every", "eval_at_end", "data_dir",
                  "channels_last", "compile", "knn_every", "fid_every", "fid_track_samples",
                  "eval_samples", "mode_samples", "knn_samples", "eval_likelihood", "eval_walks",
                  "eval_k")                                         # the last six: evaluation only


def require(cond: bool, key: str, value: Any, why: str) -> None:
    if not cond:
        raise ConfigError(f"config key '{key}' = {value!r} is invalid: {why}")


# --------------------------------------------------------------------------------------------
# type coercion and validation

def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert a YAML/CLI value to the annotated type, or raise ConfigError naming the key."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "~")):
            if type(None) in args:
                return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except ConfigError:
                pass
        raise ConfigError(f"config key '{key}': expected {_type_name(tp)}, got {value!r}")
    if origin in (tuple, list):
        if isinstance(value, str):
            value = yaml.safe_load(value)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}': expected a list, got {value!r}")
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"config key '{key}': expected {len(args)} values, got {len(value)}")
            return tuple(_coerce(v, a, key) for v, a in zip(value, args))
        elem = args[0] if args else Any
        out = [_coerce(v, elem, key) for v in value]
        return tuple(out) if origin is tuple else out
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, str):
            low = value.lower()
            if low in ("true", "yes", "on", "1"):
                return True
            if low in ("false", "no", "off", "0"):
                return False
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key '{key}': expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, str):
            try:
                value = int(value.replace("_", ""))
            except ValueError:
                raise ConfigError(f"config key '{key}': expected an integer, got {value!r}") from None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config key '{key}': expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"config key '{key}': expected a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config key '{key}': expected a number, got {value!r}")
        try:
            value = float(value)
        except OverflowError:
            raise ConfigError(f"config key '{key}': number too large, got {str(value)[:40]}...") from None
        if not math.isfinite(value):
            raise ConfigError(f"config key '{key}': expected a finite number, got {value!r}")
        return value
    if tp is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise ConfigError(f"config key '{key}': expected a string, got {value!r}")
        return value
    raise ConfigError(f"config key '{key}': unsupported type {_type_name(tp)}")


def validate(cfg) -> None:
    """Check every field's type and constraints, then the config's own ``check()``."""
    hints = _hints(type(cfg))
    for f in fields(cfg):
        value = _coerce(getattr(cfg, f.name), hints[f.name], f.name)
        object.__setattr__(cfg, f.name, value)
        m = f.metadata
        if value is None:
            continue
        vals = value if isinstance(value, (list, tuple)) else (value,)
        for v in vals:
            if m.get("choices") is not None and v not in m["choices"]:
                raise ConfigError(f"config key '{f.name}' = {v!r} is not one of {list(m['choices'])}")
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                continue
            for op, bound, ok in (("ge", ">=", lambda a, b: a >= b), ("gt", ">", lambda a, b: a > b),
                                  ("le", "<=", lambda a, b: a <= b), ("lt", "<", lambda a, b: a < b)):
                if m.get(op) is not None and not ok(v, m[op]):
                    raise ConfigError(f"config key '{f.name}' = {v!r} is out of range: must be {bound} {m[op]}")
    cfg.check()


# --------------------------------------------------------------------------------------------
# resolution: defaults < file < overrides

def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["lr=1e-3", "betas=[0.5,0.999]"]`` -> ``{"lr": "1e-3", "betas": "[0.5,0.999]"}`` (typed later)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, value = item.split("=", 1)
        key = key.strip().replace("-", "_")
        if not key:
            raise ConfigError(f"override {item!r} has an empty key")
        out[key] = value
    return out


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        what = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{path}{where}: invalid YAML ({what})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (invalid UTF-8)") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys, got {type(data).__name__}")
    return data


def build_config(cls, values: dict[str, Any], method: str = "", source: str = ""):
    """Instantiate ``cls`` from a flat mapping, rejecting unknown keys with the list of known ones."""
    known = {f.name for f in fields(cls)}
    for key in values:
        if key not in known:
            where = f" in {source}" if source else ""
            raise ConfigError(f"unknown config key '{key}'{where} for method '{method}' "
                              f"(known: {', '.join(sorted(known))})")
    hints = _hints(cls)
    typed = {k: _coerce(v, hints[k], k) for k, v in values.items()}
    return cls(**typed)


def resolve_config(cls, method: str, config_file: str | Path | None = None,
                   overrides: list[str] | dict[str, Any] | None = None):
    """Defaults < YAML file < overrides. A ``method:`` key in the file must name this method."""
    values: dict[str, Any] = {}
    if config_file is not None:
        data = load_yaml(config_file)
        file_method = data.pop("method", method)
        if file_method != method:
            raise ConfigError(f"{config_file}: config is for method '{file_method}', not '{method}'")
        known = {f.name for f in fields(cls)}
        for key in data:
            if key not in known:
                raise ConfigError(f"unknown config key '{key}' in {config_file} for method '{method}' "
                                  f"(known: {', '.join(sorted(known))})")
        values.update(data)
    if overrides:
        values.update(parse_overrides(overrides) if isinstance(overrides, list) else overrides)
    return build_config(cls, values, method)


def to_dict(cfg) -> dict[str, Any]:
    return {f.name: (list(v) if isinstance(v := getattr(cfg, f.name), tuple) else v) for f in fields(cfg)}


def to_yaml(cfg, method: str) -> str:
    return yaml.safe_dump({"method": method, **to_dict(cfg)}, sort_keys=False)


def describe(cls) -> list[tuple[str, str, Any, str]]:
    """(key, type, default, help) rows for ``latentlab methods --verbose`` and docs."""
    hints = _hints(cls)
    rows = []
    for f in fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        rows.append((f.name, _type_name(hints[f.name]), default, f.metadata.get("help", "")))
    return rows
