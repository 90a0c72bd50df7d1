"""The one training loop, on Lightning Fabric, that runs every method.

    run dir  <-  config.yaml (before training), metrics.jsonl, tb/, images/, checkpoints/, weights.safetensors
    for step in range(start, steps):              # step: steps done before this one
        batch = next(stream)                      # position(s) checkpointed
        logs  = method.training_step(batch, step) # the method's own updates (GAN: D then G)
        method.step = step + 1                    # steps done, from here on and after training
        EMA updates; schedulers; monitors at their interval
        log / images / checkpoint / stop on signal

Resume loads every network, optimizer, scheduler, method buffer, the data position and the RNG
states, so ``k steps + resume + N-k steps`` equals ``N steps`` exactly.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import RESUMABLE_KEYS, to_dict, to_yaml
from ..errors import LatentlabError, NonFiniteLossError
from ..fileio import finite_json, write_json, write_text
from ..modules import unwrap
from ..results import EvalResult
from .method import Method
from .init_from import init_from
from .checkpoint import load_checkpoint, load_state, rng_state, save_checkpoint, save_weights, set_rng_state
from .logging import RunLogger, read_log
from ..nets.ema import ema_update


class TrainingInterrupted(Exception):
    """SIGINT/SIGTERM arrived; a checkpoint was written. ``exit_code`` is 128 + signal number."""

    def __init__(self, signum: int, step: int, run_dir: Path):
        self.exit_code, self.step, self.run_dir = 128 + signum, step, run_dir
        super().__init__(f"interrupted by {signal.Signals(signum).name} at step {step}; "
                         f"checkpoint written, continue with --resume {run_dir}")


@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    seconds: float
    eval: EvalResult | None = None
    artifacts: dict[str, str] = field(default_factory=dict)


def make_fabric(cfg):
    from lightning.fabric import Fabric
    accel = {"gpu": "cuda"}.get(cfg.device, cfg.device)
    if accel == "cuda" and not torch.cuda.is_available():
        raise LatentlabError("config key 'device' = 'cuda' but no CUDA device is available")
    strategy = cfg.strategy
    if strategy == "auto" and accel == "cpu" and cfg.devices > 1:
        strategy = "ddp"
    return Fabric(accelerator=accel, devices=cfg.devices, strategy=strategy, precision=cfg.precision)


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def default_run_dir(method: str, cfg) -> Path:
    ds = Path(cfg.dataset).name if os.sep in cfg.dataset else cfg.dataset
    return Path("runs") / f"{method}-{ds}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def check_new_run_dir(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise LatentlabError(f"{path}: exists and is not a directory; choose another --out")
    if path.exists() and any(path.iterdir()):
        raise LatentlabError(f"{path}: run directory exists and is not empty; use --resume {path} to continue it "
                             f"(from its last checkpoint, or from step 0 if it stopped before its first), "
                             f"or choose another --out")


def resume_state(run_dir: Path, method_name: str, cfg, world: int) -> dict | None:
    """The checkpoint a resume continues from, every check made before anything is written: the method, the
    number of processes, the step, the config keys that may not change (``config.RESUMABLE_KEYS`` may) and
    a readable metrics log. None: the run stopped before its first checkpoint, so it restarts at step 0."""
    if not run_dir.is_dir():
        raise LatentlabError(f"{run_dir}: no such run directory")
    path = run_dir / "checkpoints" / "last.ckpt"
    read_log(run_dir / "metrics.jsonl")               # a corrupt log fails now (a torn last line is dropped later)
    if not path.exists():
        others = sorted((run_dir / "checkpoints").glob("step_*.ckpt")) if (run_dir / "checkpoints").is_dir() else []
        if others:
            raise LatentlabError(f"{path}: missing, but {others[-1].name} exists beside it; copy the checkpoint "
                                 f"to resume from to last.ckpt")
        for done in ("weights.safetensors", "eval.json"):      # written after the last checkpoint: a finished run
            if (run_dir / done).exists():
                raise LatentlabError(f"{path}: missing, but {run_dir / done} exists (the run had finished and its "
                                     f"checkpoints were deleted); nothing to resume, and it is not retrained over")
        return None
    state = load_checkpoint(path)
    if state.get("method_name") != method_name:
        raise LatentlabError(f"{path}: checkpoint is of method '{state.get('method_name')}', not '{method_name}'")
    if len(state["rng"]) != world:
        raise LatentlabError(f"{path}: saved with {len(state['rng'])} processes, resuming with {world}")
    if int(state["step"]) > cfg.steps:
        raise LatentlabError(f"{path}: checkpoint is at step {state['step']}, beyond steps={cfg.steps}")
    saved, now = state.get("config", {}), to_dict(cfg)
    for key in now:
        if key in saved and key not in RESUMABLE_KEYS and saved[key] != now[key]:
            raise LatentlabError(f"{path}: config key '{key}' cannot change on resume ({saved[key]!r} in the "
                                 f"checkpoint, {now[key]!r} now); keys that can: {', '.join(RESUMABLE_KEYS)}")
    return state


class _StopFlag:
    """Turns SIGINT/SIGTERM into a flag checked between steps (main thread only)."""

    def __init__(self):
        self.signum: int | None = None
        self._old = {}

    def __enter__(self):
        import threading
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signum is not None:  # second signal: stop hard
            signal.signal(signum, self._old.get(signum, signal.SIG_DFL))
            raise KeyboardInterrupt
        self.signum = signum

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)


def _gather_rng(fabric) -> list[dict[str, Any]]:
    state = rng_state()
    if fabric.world_size == 1:
        return [state]
    out: list = [None] * fabric.world_size
    torch.distributed.all_gather_object(out, state)
    return out


def train(method: type[Method] | Method, cfg=None, out: str | Path | None = None, resume: str | Path | None = None,
          fabric=None, verbose: bool = True) -> TrainResult:
    """Train ``method``, a method class (built here, after seeding, with the resolved ``cfg``) or an instance
    built by the caller (``cfg`` is its own); returns the run directory and final evaluation."""
    built = isinstance(method, Method)
    cls = type(method) if built else method
    cfg = method.cfg if built else cfg
    if cfg is None:
        raise LatentlabError(f"train: no config for method class '{cls.name}' (pass cfg=)")
    method_name = cls.name
    fabric = fabric or make_fabric(cfg)
    fabric.launch()
    rank, world = fabric.global_rank, fabric.world_size
    if resume is not None:
        run_dir = Path(resume)
        ckpt_path = run_dir / "checkpoints" / "last.ckpt"
        state = resume_state(run_dir, method_name, cfg, world)
        if state is None and verbose and rank == 0:
            print(f"note: {run_dir} has no checkpoint (the run stopped before its first): training it again "
                  f"from step 0", file=sys.stderr, flush=True)
    else:
        run_dir = Path(out) if out is not None else default_run_dir(method_name, cfg)
        refusal = None
        if rank == 0:
            try:
                check_new_run_dir(run_dir)
            except LatentlabError as e:
                refusal = str(e)
        if world > 1:                      # every process stops, not only rank 0 (others would wait forever)
            refusal = fabric.broadcast(refusal, src=0)
        if refusal:
            raise LatentlabError(refusal)
        state = None

    seed_all(cfg.seed)                     # the same seed on every rank: identical networks, teachers, banks
    if not built:
        method = cls(cfg)                  # builds networks and loads data: errors before any file is written
    method.setup(fabric)
    if rank:
        seed_all(cfg.seed + rank)          # then each process draws its own augmentations and noise
    method.run_dir = run_dir
    stream = method.batches(rank, world)
    start = 0
    if state is not None:
        def restore():
            method.load_state_dict(state["method"])
            stream.load_state_dict(state["data"])
            set_rng_state(state["rng"][rank])
        load_state(restore, ckpt_path, "the method's networks or data")
        start = int(state["step"])

    is_main = rank == 0
    record = None
    if state is None and cfg.init_from:   # another run's weights, checked before anything is written
        record = init_from(method, cfg.init_from)
    if is_main:
        (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        write_text(run_dir / "config.yaml", to_yaml(cfg, method_name))
        if record is not None:
            write_json(run_dir / "init_from.json", record)
    logger = RunLogger(run_dir, cfg.steps, start, enabled=is_main, resume=resume is not None, progress=verbose)

    def checkpoint(done: int, periodic: bool) -> None:
        nonlocal saved
        rng = _gather_rng(fabric)
        saved = done                       # every rank: the step its non-finite-loss message names
        if not is_main:
            return
        full = {"version": 2, "method_name": method_name, "step": done, "config": to_dict(cfg),
                "method": method.state_dict(), "data": stream.state_dict(), "rng": rng}
        save_checkpoint(run_dir / "checkpoints" / "last.ckpt", full)
        if periodic:
            save_checkpoint(run_dir / "checkpoints" / f"step_{done:07d}.ckpt", full)

    if verbose and is_main:
        print(f"{method_name}: training {cfg.steps - start} steps on {cfg.dataset} -> {run_dir}", flush=True)
    # 64-true: the whole step in float64, losses included (Fabric alone casts each network's output back
    # to float32, so a loss would round to float32 and DDP-vs-1-process checks would compare float32 noise)
    step_context = fabric.autocast if cfg.precision == "64-true" else contextlib.nullcontext
    cadence = Cadence(method, cfg.steps, start)
    t0 = time.perf_counter()
    window: dict[str, list[float]] = {}
    done = start
    saved = start if state is not None else None   # the step of the last checkpoint written (None: none yet)
    try:
        with _StopFlag() as stop:
            for step in range(start, cfg.steps):
                method.step = step                                  # steps done before this one
                try:
                    with step_context():
                        logs = method.training_step(next(stream), step)
                        done = method.step = step + 1
                        logs = cadence.after_step(done, logs)
                except NonFiniteLossError as e:
                    raise NonFiniteLossError(f"{e}; stopped, " + (
                        f"the last checkpoint (step {saved}, {run_dir / 'checkpoints' / 'last.ckpt'}) is kept"
                        if saved is not None else "and no checkpoint was written yet")) from None
                for k, v in logs.items():
                    window.setdefault(k, []).append(float(v))
                if done % cfg.log_every == 0 or done == cfg.steps:
                    logger.log(done, {k: sum(v) / len(v) for k, v in window.items()})
                    window.clear()
                else:
                    logger.advance(done)
                if cfg.image_every and done % cfg.image_every == 0 and is_main:
                    logger.images(done, method.images())
                if cfg.ckpt_every and done % cfg.ckpt_every == 0 and done != cfg.steps:
                    checkpoint(done, periodic=True)
                if stop.signum is not None:
                    checkpoint(done, periodic=False)
                    raise TrainingInterrupted(stop.signum, done, run_dir)
                if cfg.max_seconds is not None and _out_of_time(fabric, t0, cfg.max_seconds):
                    if window:
                        logger.log(done, {k: sum(v) / len(v) for k, v in window.items()})
                    break
        checkpoint(done, periodic=False)
    finally:
        logger.close()
    seconds = time.perf_counter() - t0
    result = TrainResult(run_dir, done - start, seconds)
    if not is_main:
        return result
    save_weights(run_dir / "weights.safetensors", {k: unwrap(m).state_dict() for k, m in method.modules().items()},
                 {"method": method_name, "step": str(done)})
    logger = RunLogger(run_dir, cfg.steps, done, enabled=True, resume=False, progress=False)
    try:
        if cfg.image_every:
            result.artifacts.update({k: str(v) for k, v in logger.images(done, method.images()).items()})
        result.artifacts.update(method.on_train_end(run_dir))
        if cfg.eval_at_end:
            result.eval = method.evaluate()
            write_eval(run_dir, result.eval, done)
            logger.record(done, result.eval.metrics, "eval")
            result.artifacts.update(result.eval.artifacts)
    finally:
        logger.close()
    return result


class Cadence:
    """What the engine does after every training step, in this order: the method's weight averages
    (``ema()``), its schedulers (each step but the last, when no rate is used any more; ``ReduceLROnPlateau``
    instead when ``plateau_metric`` was just measured), then its monitors at their intervals."""

    def __init__(self, method: Method, steps: int, start: int = 0):
        self.method, self.steps = method, steps
        self.ema = {avg: (getattr(method, avg), getattr(method, src), decay)
                    for avg, (src, decay) in method.ema().items()}
        self.monitors = [(every, fn) for every, fn in method.monitors().values() if every]
        if 0 < start < steps:      # a finished run continued for more steps: the step its schedulers skipped
            for sched in method.schedulers.values():
                if (not isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau)
                        and getattr(sched, "last_epoch", start) == start - 1):
                    sched.step()

    def after_step(self, done: int, logs: dict[str, float]) -> dict[str, float]:
        m = self.method
        for avg, online, decay in self.ema.values():
            ema_update(avg, online, decay(done) if callable(decay) else decay)
        plateau = {}
        for name, sched in m.schedulers.items():
            if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
                plateau[name] = sched
            elif done < self.steps:
                sched.step()
        for every, fn in self.monitors:
            if done % every == 0:
                logs = {**logs, **fn()}
        if plateau and m.plateau_metric in logs:
            for sched in plateau.values():
                sched.step(logs[m.plateau_metric])
        return logs


def _out_of_time(fabric, t0: float, budget: float) -> bool:
    """The time budget is over (rank 0 decides, so every process stops at the same step)."""
    over = torch.tensor([float(time.perf_counter() - t0 >= budget)])
    if fabric.world_size > 1:
        torch.distributed.broadcast(over, src=0)
    return bool(over.item())


def eval_file(protocol: str | None = None, layer: str | None = None) -> str:
    """The file an evaluation is written to: eval.json (the method's own), eval_<protocol>[_<layer>].json."""
    return f"eval_{protocol}" + (f"_{layer}" if layer else "") + ".json" if protocol else "eval.json"


def write_eval(run_dir: Path, res: EvalResult, step: int, name: str = "eval.json") -> Path:
    """``eval.json``: strict JSON; a non-finite metric is written as null, its value named in
    ``protocol.non_finite`` (e.g. ``{"kl_modes": "inf"}``)."""
    metrics, protocol = eval_record(res)
    return write_json(Path(run_dir) / name, {"step": step, "metrics": metrics, "protocol": protocol,
                                            "artifacts": res.artifacts})


def eval_record(res: EvalResult) -> tuple[dict, dict]:
    """(metrics, protocol) for strict JSON: a non-finite metric becomes null and ``protocol["non_finite"]``
    names its value (``{"kl_modes": "inf"}``)."""
    non_finite: dict = {}
    metrics = finite_json(res.metrics, found=non_finite)
    return metrics, {**res.protocol, **({"non_finite": non_finite} if non_finite else {})}
