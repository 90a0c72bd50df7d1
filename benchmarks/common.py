"""Shared helpers for benchmark suites: machine description, tables, mean ± standard error, runs."""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
OUT = ROOT / "benchmarks" / "out"          # run directories (git-ignored)
SHARED_DATA = ROOT.parent / "shared" / "data"


class SkipSuite(Exception):
    """Raised by a suite that cannot run on this machine (e.g. no CUDA device); its last results are kept."""


def data_dir() -> str:
    return os.environ.get("LATENTLAB_DATA", str(SHARED_DATA))


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads, Python {platform.python_version()}")


def git_rev() -> str:
    if os.environ.get("LATENTLAB_GIT_REV"):      # a copy of the tree without .git (e.g. a lent GPU machine)
        return os.environ["LATENTLAB_GIT_REV"]
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True).stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def mean_se(xs: list[float]) -> tuple[float, float]:
    """Mean and standard error; an infinite value (e.g. KL of a fully collapsed run) makes both inf."""
    if any(math.isinf(x) for x in xs):
        return float("inf"), float("inf")
    m = statistics.fmean(xs)
    se = statistics.stdev(xs) / math.sqrt(len(xs)) if len(xs) > 1 else float("nan")
    return m, se


def beyond_noise(a: list[float], b: list[float]) -> bool:
    """mean(a) - mean(b) larger than twice the standard error of the difference (independent seeds)."""
    ma, sa = mean_se(a)
    mb, sb = mean_se(b)
    return ma - mb > 2 * (sa ** 2 + sb ** 2) ** 0.5


def fmt_mean_se(xs: list[float], digits: int = 1, scale: float = 1.0) -> str:
    m, se = mean_se([x * scale for x in xs])
    if math.isinf(m):
        return f"∞ ({sum(math.isinf(x) for x in xs)}/{len(xs)} runs with no high-quality sample)"
    return f"{m:.{digits}f} ± {se:.{digits}f}" if not math.isnan(se) else f"{m:.{digits}f}"


def table(header: list[str], rows: list[list]) -> str:
    line = lambda cells: "| " + " | ".join(str(c) for c in cells) + " |"
    return "\n".join([line(header), line(["---"] * len(header)), *(line(r) for r in rows)])


def section(title: str, command: str, budget: str, seeds: str, body: str, notes: str = "") -> str:
    """A BENCHMARKS.md section that always states command, machine, time budget and seeds."""
    head = (f"## {title}\n\n- command: `{command}`\n- machine: {machine()}\n- budget: {budget}\n"
            f"- seeds: {seeds}\n- commit: {git_rev()}, measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    return head + "\n" + body.strip() + "\n" + (f"\n{notes.strip()}\n" if notes else "")


def train_run(method: str, out: Path, reuse: bool = True, extend: bool = False, **overrides):
    """Train in-process through the engine; returns the TrainResult.

    A finished run in ``out`` with the same resolved config is reused (its ``result.json``), so an
    interrupted suite continues where it stopped instead of retraining; delete benchmarks/out to redo all.
    ``extend``: a finished run whose config differs only by fewer ``steps`` is resumed to the new length; for a
    method none of whose schedules depends on ``steps`` (e.g. AlexNet's plateau rule) that gives the same weights
    as a run trained that long at once (exact resume). Its steps and seconds are the totals.
    """
    from latentlab.config import resolve_config, to_yaml
    from latentlab.engine import TrainResult, train
    from latentlab.engine.loop import EvalResult
    from latentlab.methods import get_method
    cfg = resolve_config(get_method(method).Config, method, None, {k: str(v) for k, v in overrides.items()})
    done = out / "result.json"
    if reuse and done.exists() and (out / "config.yaml").read_text() == to_yaml(cfg, method):
        r = json.loads(done.read_text())
        ev = EvalResult(r["metrics"], r["protocol"], r["artifacts"]) if r["metrics"] is not None else None
        return TrainResult(out, r["steps"], r["seconds"], ev, r["artifacts"])
    before = None
    if extend and reuse and done.exists():
        from dataclasses import replace

        from latentlab.engine.run import load_run_config
        old = load_run_config(out)[1]
        if old.steps < cfg.steps and to_yaml(replace(old, steps=cfg.steps), method) == to_yaml(cfg, method):
            before = json.loads(done.read_text())
    if before is None and out.exists():
        import shutil
        shutil.rmtree(out)
    res = train(method, cfg, out=None if before else out, resume=out if before else None, verbose=False)
    if before:
        res.steps, res.seconds = before["steps"] + res.steps, before["seconds"] + res.seconds
    done.write_text(json.dumps({"rev": git_rev(), "steps": res.steps, "seconds": res.seconds,
                                "metrics": res.eval.metrics if res.eval else None,
                                "protocol": res.eval.protocol if res.eval else {}, "artifacts": res.artifacts},
                               default=str))
    return res


def save_json(name: str, obj) -> None:
    if os.environ.get("LATENTLAB_BENCH_QUICK"):  # --quick checks the suite runs; it records nothing
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(obj, indent=2, default=str) + "\n")


def line_plot(name: str, title: str, xlabel: str, ylabel: str, series, log2_x: bool = False) -> Path:
    """Save ``series`` [(label, fmt, xs, ys, yerr or None)] as benchmarks/results/<name>.png; returns the path."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for label, fmt, xs, ys, yerr in series:
        ax.errorbar(xs, ys, yerr=yerr, fmt=fmt, capsize=3 if yerr is not None else 0, label=label)
    if log2_x:
        ax.set_xscale("log", base=2)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
