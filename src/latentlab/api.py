"""The Python API: what the CLI does, for notebooks and scripts.

    import latentlab as ll
    run = ll.train("gan2d", dataset="ring8", steps=2000, out="runs/ring8")   # key=value overrides as keywords
    run.metrics                      # the final evaluation (None with eval_at_end=False)
    x = run.sample(500)              # a generative method's samples
    run.evaluate()                   # the method's own protocol; run.evaluate("linear") for an encoder
    run = ll.load("runs/ring8")      # a finished or interrupted run
    ll.methods()                     # name -> one-line summary (the ``latentlab.methods`` package, called)
    ll.resolve("dcgan", steps=500)   # the resolved, validated config as a dict
    ll.featurenet("mnist")           # train the frozen feature network that FID/KID read (evaluation never does)

The same validation and errors as the CLI, raised as exceptions instead of exit codes (``LatentlabError`` and
its subclasses ``ConfigError`` and ``DataError``); nothing here prints except the training progress
(``verbose=False`` silences it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .config import resolve_config, to_dict
from .engine import Method, open_run, run_config, run_method_name, train as _train, write_eval
from .engine.loop import eval_file
from .engine.logging import read_metrics
from .errors import ConfigError
from .eval import run_protocol
from .methods import get_method
from .results import EvalResult


class Run:
    """A run directory opened for use: its config, its method (networks with the last checkpoint's weights)
    and its records. ``result`` is the final evaluation of a run just trained (None otherwise)."""

    def __init__(self, run_dir: str | Path, method: Method, result: EvalResult | None = None):
        self.run_dir, self.method, self.result = Path(run_dir), method, result

    def __repr__(self) -> str:
        return f"Run({str(self.run_dir)!r}, method={self.name!r}, step={self.step})"

    @property
    def name(self) -> str:
        return self.method.name

    @property
    def step(self) -> int:
        return int(self.method.step)

    @property
    def config(self) -> dict[str, Any]:
        return to_dict(self.method.cfg)

    @property
    def metrics(self) -> dict[str, Any] | None:
        return self.result.metrics if self.result is not None else None

    def log(self) -> list[dict]:
        """Every record of ``metrics.jsonl``: training rows, and evaluations with ``"kind": "eval"`` (non-finite
        values are None)."""
        return read_metrics(self.run_dir)

    @torch.no_grad()
    def sample(self, n: int, **kw) -> torch.Tensor:
        """``n`` samples of a generative method (images in [0, 1], or points); ``label=`` for conditional
        models, ``seed=`` where the method takes one."""
        if n < 1:
            raise ConfigError(f"sample: n = {n}; the number of samples must be at least 1")
        if not self.method.generative:
            raise ConfigError(f"{self.run_dir}: method '{self.name}' is not generative: nothing to sample")
        return self.method.sample(n, **kw)

    def evaluate(self, protocol: str | None = None, save: bool = True, **kw) -> EvalResult:
        """The method's own evaluation (``protocol=None``), or a named protocol (``"linear"``, ``"knn"``,
        ``"retrieval"``, a GAN's ``"test"`` reference, ...) with its options; written to the run directory as
        ``latentlab eval`` does unless ``save=False``."""
        res = run_protocol(self.method, protocol, **kw)
        if save:
            write_eval(self.run_dir, res, self.step, eval_file(protocol, kw.get("layer")))
        return res


def resolve(method: str, config_file: str | Path | None = None, **overrides) -> dict[str, Any]:
    """The resolved config of ``method`` (defaults < ``config_file`` < keyword overrides), validated."""
    cls = get_method(method)
    return to_dict(resolve_config(cls.Config, method, config_file, {k: _text(v) for k, v in overrides.items()}))


def train(method: str, out: str | Path | None = None, config_file: str | Path | None = None,
          resume: str | Path | None = None, verbose: bool = True, **overrides) -> Run:
    """Train ``method`` (``latentlab train``): keyword overrides are config keys; ``resume=RUN_DIR`` continues a
    run (only ``config.RESUMABLE_KEYS`` may change). Returns the run, opened."""
    if resume is not None and (out is not None or config_file is not None):   # (train_config names the CLI's options)
        raise ConfigError("resume cannot be combined with out or config_file: the run continues in its own "
                          "directory with its own config.yaml")
    cfg = train_config(method, config_file, {k: _text(v) for k, v in overrides.items()}, resume, out)
    res = _train(get_method(method), cfg, out=out, resume=resume, verbose=verbose)
    return Run(res.run_dir, load_run(res.run_dir), res.eval)


def train_config(method: str, config_file, overrides: dict, resume=None, out=None):
    """The config a training run uses (the CLI's and ``train``'s): defaults < file < overrides, or on resume
    the run's own config.yaml < overrides (a file or another output directory is refused then)."""
    if resume is None:
        return resolve_config(get_method(method).Config, method, config_file, overrides)
    for opt, value in (("--config", config_file), ("--out", out)):
        if value:
            raise ConfigError(f"{opt} cannot be used with --resume: the run continues in {resume} with its own "
                              f"config.yaml (change a key that may change with key=value)")
    name = run_method_name(resume)
    if name != method:
        raise ConfigError(f"{resume}: run is of method '{name}', not '{method}'")
    return run_config(get_method(name), resume, overrides)


def load_run(run_dir: str | Path, overrides: dict | None = None, checkpoint: str | Path | None = None) -> Method:
    """The method of a run directory, by the name in its config.yaml, with its last (or ``checkpoint``'s)
    weights (``engine.open_run`` with the class looked up)."""
    return open_run(get_method(run_method_name(run_dir)), run_dir, overrides, checkpoint)


def featurenet(dataset: str, steps: int | None = None, seed: int = 0, verbose: bool = False) -> dict:
    """Train and cache the frozen feature network of ``dataset`` that FID/KID and the class protocols read
    (``latentlab featurenet DATASET``); returns its metadata. Evaluation never trains it by itself."""
    from .commands.featurenet import DEFAULT_STEPS, train_featurenet
    return train_featurenet(dataset, steps or DEFAULT_STEPS, seed=seed, verbose=verbose)


def load(run_dir: str | Path, **overrides) -> Run:
    """Open a run directory (its last checkpoint); keyword overrides change evaluation-time keys (e.g.
    ``data_dir``)."""
    return Run(run_dir, load_run(run_dir, {k: _text(v) for k, v in overrides.items()} or None))


def _text(v: Any) -> Any:
    """A keyword value as the CLI would give it (lists and tuples as YAML), so both paths validate alike."""
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(map(str, v)) + "]"
    return str(v) if v is not None else "null"


__all__ = ["Run", "featurenet", "load", "load_run", "resolve", "train"]
