"""Shared helpers of the benchmark suites and studies: machine description, tables, the one ± convention,
runs, the self-supervised probes and the image-GAN runs that several suites use."""

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
# The one convention for ± in every table (stated once at the top of BENCHMARKS.md): fmt_mean_se writes it.
SPREAD = ("mean ± standard error over seeds (sample standard deviation / √n; a single seed is shown without ±). "
          "'Beyond noise': a difference of means larger than twice its standard error.")


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


def fmt_mean_se(xs: list[float], digits: int = 1, scale: float = 1.0, sign: bool = False) -> str:
    """``xs`` (one value per seed) as ``mean ± standard error`` (the benchmarks' one ± convention, ``SPREAD``);
    one value: as is. ``scale`` multiplies first (100: percent); ``sign`` writes the mean with its sign."""
    m, se = mean_se([x * scale for x in xs])
    if math.isinf(m):
        return f"∞ ({sum(math.isinf(x) for x in xs)}/{len(xs)} runs with no high-quality sample)"
    mean = f"{m:+.{digits}f}" if sign else f"{m:.{digits}f}"
    return f"{mean} ± {se:.{digits}f}" if not math.isnan(se) else mean


def fmt_pct(xs: list[float], digits: int = 1) -> str:
    """Fractions (one per seed) as percent, mean ± standard error (``fmt_mean_se`` at scale 100)."""
    return fmt_mean_se(xs, digits, 100)


def fmt_or_dash(x, digits: int = 3) -> str:
    """A value that may be missing (None): '–'."""
    return "–" if x is None else f"{x:.{digits}f}"


def table(header: list[str], rows: list[list]) -> str:
    line = lambda cells: "| " + " | ".join(str(c) for c in cells) + " |"
    return "\n".join([line(header), line(["---"] * len(header)), *(line(r) for r in rows)])


def section(title: str, command: str, budget: str, seeds: str, body: str, notes: str = "",
            measured: dict | None = None) -> str:
    """A BENCHMARKS.md section that always states command, machine, time budget and seeds.

    ``measured``: the machine and commit lines of an earlier measurement (``measured_header``), for a table
    rendered again from its results JSON without re-running anything (``python -m benchmarks.run --render``)."""
    if measured:
        when = (f"- machine: {measured['machine']}\n- budget: {budget}\n- seeds: {seeds}\n- commit: {measured['commit']}\n"
                f"- table rendered again from its results JSON at commit {git_rev()} (nothing re-run)\n")
    else:
        when = (f"- machine: {machine()}\n- budget: {budget}\n- seeds: {seeds}\n"
                f"- commit: {git_rev()}, measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    head = f"## {title}\n\n- command: `{command}`\n" + when
    return head + "\n" + body.strip() + "\n" + (f"\n{notes.strip()}\n" if notes else "")


def measured_header(name: str) -> dict | None:
    """The machine and commit lines of results/<name>.md (what ``section`` wrote when it was measured)."""
    f = RESULTS / f"{name}.md"
    if not f.is_file():
        return None
    out = {}
    for line in f.read_text().splitlines():
        for key in ("machine", "commit"):
            if line.startswith(f"- {key}:") and key not in out:
                out[key] = line.split(":", 1)[1].strip()
    return out if len(out) == 2 else None


def claim_headline(name: str, anchor: str, prefix: str = "**Claim") -> tuple[str, str] | None:
    """A suite's headline: the bold claim line of results/<name>.md (its verdict), beside ``anchor``."""
    f = RESULTS / f"{name}.md"
    line = next((l for l in f.read_text().splitlines() if l.startswith(prefix)), None) if f.is_file() else None
    return (line.strip("*").split("**")[0], anchor) if line else None


def recorded_rows(name: str) -> list[dict]:
    """The rows of results/<name>.json, each with ``measured_at``: the commit and date of the measurement that
    produced it (its own field when it was carried before, else the section's header). A collecting pass reads
    them to keep rows whose runs are not on this machine (read them before the suite rewrites the file)."""
    old = load_json(name) or {}
    when = (measured_header(name) or {}).get("commit", "unknown")
    return [{**r, "measured_at": r.get("measured_at", when)} for r in old.get("rows", [])]


def carried_row(recorded: list[dict], **match) -> dict | None:
    """The recorded row whose fields include ``match`` (e.g. kind, task, variant, seed, steps), or None."""
    return next((r for r in recorded if all(r.get(k) == v for k, v in match.items())), None)


def load_json(name: str):
    """results/<name>.json, or None."""
    f = RESULTS / f"{name}.json"
    return json.loads(f.read_text()) if f.is_file() else None


def finished_run(method: str, out: Path, **overrides):
    """The TrainResult of a finished run in ``out`` whose resolved config is ``overrides``'s, else None (nothing
    is trained)."""
    from latentlab.config import resolve_config, to_yaml
    from latentlab.engine import TrainResult
    from latentlab.methods import get_method
    from latentlab.results import EvalResult
    cfg = resolve_config(get_method(method).Config, method, None, {k: str(v) for k, v in overrides.items()})
    done = out / "result.json"
    if not (done.exists() and (out / "config.yaml").read_text() == to_yaml(cfg, method)):
        return None
    r = json.loads(done.read_text())
    ev = EvalResult(r["metrics"], r["protocol"], r["artifacts"]) if r["metrics"] is not None else None
    return TrainResult(out, r["steps"], r["seconds"], ev, r["artifacts"])


def collecting() -> bool:
    """``$LATENTLAB_COLLECT`` is set: suites table their finished runs and train nothing."""
    return bool(os.environ.get("LATENTLAB_COLLECT"))


def train_or_collect(method: str, out: Path, collect: bool | None = None, **overrides):
    """``train_run``, or with ``collect`` (default: ``collecting()``) the finished run or None: nothing
    trained, so a suite can write the table of what is measured so far while its workers still run."""
    if collecting() if collect is None else collect:
        return finished_run(method, out, **overrides)
    return train_run(method, out, **overrides)


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
    from latentlab.results import EvalResult
    from latentlab.methods import get_method
    cfg = resolve_config(get_method(method).Config, method, None, {k: str(v) for k, v in overrides.items()})
    done = out / "result.json"
    if reuse and (found := finished_run(method, out, **overrides)) is not None:
        return found
    before = None
    if extend and reuse and done.exists():
        from dataclasses import replace

        old = run_cfg(out)
        if old.steps < cfg.steps and to_yaml(replace(old, steps=cfg.steps), method) == to_yaml(cfg, method):
            before = json.loads(done.read_text())
    if before is None and out.exists():
        import shutil
        shutil.rmtree(out)
    res = train(get_method(method), cfg, out=None if before else out, resume=out if before else None, verbose=False)
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


def save_partial(name: str, results, report) -> None:
    """A long suite's results so far: results/<name>.json and its section, written by the measuring process
    (so the section's machine and commit lines are the measurement's, not those of a later --render). Results
    with no rows (a collecting pass that found no finished run) never replace a measured table."""
    if not results.get("rows"):
        return
    save_json(name, results)
    if not os.environ.get("LATENTLAB_BENCH_QUICK"):
        (RESULTS / f"{name}.md").write_text(report(results).strip() + "\n")


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


# -- self-supervised representations: train a run for a wall time, then the linear and k-NN probes ----------
# (the ssl suite and the ssl studies; their runs live in benchmarks/out/ssl, so a study reuses the suite's cache)

def _params(module) -> str:
    from latentlab.modules import unwrap
    return f"{sum(p.numel() for p in unwrap(module).parameters()) / 1e6:.2f}M"


def _arch(m) -> str:
    from latentlab.modules import unwrap
    return f"{type(unwrap(m.encoder())).__name__}-w{m.cfg.width}"


def evaluate_probes(run_dir: Path, max_train: int, max_val: int, usps: bool, maps: bool = False,
                    weight_decays=None, with_knn: bool = True, drop_features: bool = True) -> dict:
    """The probes of a run (``weight_decays``: the linear probe's grid, default its own). The feature files
    they cache are deleted afterwards unless ``drop_features`` is false (a caller probing again drops them)."""
    from latentlab.api import load_run
    from latentlab.eval.representation import PROBE_WEIGHT_DECAYS, knn, linear
    m = load_run(run_dir)
    before = set(run_dir.glob("*.pt"))
    wds = PROBE_WEIGHT_DECAYS if weight_decays is None else weight_decays
    r = linear(m, max_train=max_train, max_val=max_val, weight_decays=wds)
    out = {"linear": r.metrics["linear_test_accuracy"], "linear_val": r.metrics["linear_val_accuracy"],
           "wd": r.protocol["weight_decay"],
           "params": _params(m.encoder()), "arch": _arch(m)}
    if with_knn:
        out["knn"] = knn(m, max_train=max_train, max_val=max_val).metrics["knn_test_accuracy"]
    if maps:
        r = linear(m, max_train=max_train, max_val=max_val, layer="maps", weight_decays=wds)
        out["linear_maps"], out["maps_dim"] = r.metrics["linear_test_accuracy"], r.protocol["feature_dim"]
        out["wd_maps"] = r.protocol["weight_decay"]
    if usps:
        out["knn_usps"] = knn(m, dataset="usps", max_train=max_train, max_val=max_val).metrics["knn_test_accuracy"]
    if m.name == "supervised":
        out["test_accuracy"] = m.evaluate().metrics["test_accuracy"]
    if drop_features:
        drop_feature_caches(run_dir, before)
    return out


def drop_feature_caches(run_dir: Path, keep: set) -> None:
    """Delete the feature files the probes cached in ``run_dir`` (all but ``keep``). The suites keep their
    probe results in JSON; the full split's conv maps alone are 0.8 GB a run, and 270 runs filled the disk."""
    for f in set(run_dir.glob("*.pt")) - keep:
        f.unlink()


def probe_run_dir(method: str, dataset: str, tag: str = "") -> Path:
    """Where ``train_and_probe`` keeps a run (tag: a study's or a seed's own directory)."""
    return OUT / "ssl" / f"{method}-{dataset}{tag}"


def train_and_probe(method: str, dataset: str, seconds: float, max_train: int, max_val: int, tag: str = "",
                    **kw) -> dict:
    """Train ``method`` on ``dataset`` for ``seconds`` of wall time (or reuse the run), then probe it (linear
    and k-NN; USPS k-NN after MNIST, the conv maps on MNIST-M): one row of the ssl tables."""
    kw = {"steps": 1_000_000, "batch_size": 256, **kw} if method == "supervised" else {"steps": 1_000_000, **kw}
    run_dir = probe_run_dir(method, dataset, tag)
    t0 = time.perf_counter()
    opts = dict(eval_at_end=False, image_every=0, ckpt_every=0, log_every=50,
                **({} if method == "supervised" else {"knn_every": 0}))
    res = train_run(method, run_dir, dataset=dataset, max_seconds=seconds, **{**opts, **kw})
    bs = run_cfg(run_dir).batch_size
    row = {"steps": res.steps, "seconds": res.seconds, "im_s": res.steps * bs / res.seconds, "batch_size": bs}
    row.update(evaluate_probes(run_dir, max_train, max_val, usps=dataset == "mnist", maps=dataset == "mnist_m"))
    row["wall"] = time.perf_counter() - t0
    print(f"  {method:<15} {dataset:<8} {row['steps']:>5} steps {row['im_s']:7.0f} im/s  linear {row['linear']:.4f}"
          f"  knn {row['knn']:.4f}  ({row['wall']:.0f}s)", flush=True)
    return row


def train_sizes(dataset: str) -> tuple[int, int]:
    """(images in the train split, images a run trains on: train minus the default 10% validation split)."""
    from latentlab.data import load_dataset, split_train_val
    n = len(load_dataset(dataset, "train", data_dir()))
    return n, len(split_train_val(n, 0.1, 0)[0])


def probe_note(max_train: int, max_val: int, extra: str = "") -> str:
    """The probe protocol that the ssl suites share, as a sentence for their notes."""
    return (f"Probes as in the ssl suite (linear on standardised features, weight decay chosen on {max_val} "
            f"validation images held out from train, last iterate on the full test set; k-NN k = 20, T = 0.07; "
            f"{max_train} train images{'; ' + extra if extra else ''}).")


# -- image GANs on MNIST-like data: equal-budget runs scored by the feature network (gan_mnist, stacked_mnist) --

GAN_RUN = dict(steps=10**7, eval_samples=5000, image_every=0, log_every=100, ckpt_every=0)
GAN_PERIODIC = {"wgan_gp": dict(log_every=50, ckpt_every=50)}  # checkpoints for the critic-vs-FID claim
GAN_ONE_SEED = {"wgan"}    # Algorithm 1 at lr 5e-5 is far from converged in 5 minutes: one seed shows it


def featurenet(dataset: str):
    """The frozen feature network FID/KID read, trained first (the explicit API call) if none is cached."""
    from latentlab import api
    from latentlab.eval.featurenet import BASE, featurenet_dir, load_featurenet
    base = BASE.get(dataset, dataset)
    if not (featurenet_dir(base) / "featurenet.json").is_file():
        api.featurenet(base, verbose=True)
    return load_featurenet(dataset)


def run_cfg(run_dir):
    """A run directory's resolved config (its method looked up by name)."""
    from latentlab.engine import run_config, run_method_name
    from latentlab.methods import get_method
    return run_config(get_method(run_method_name(run_dir)), run_dir)


def featurenet_line(dataset: str) -> tuple[str, dict]:
    fn = featurenet(dataset)
    m = fn.meta
    return (f"feature network `{fn.name}` ({m['steps']} steps, val accuracy {m.get('val_accuracy', 0):.4f}, "
            f"test accuracy {m.get('test_accuracy', 0):.4f}, sha256 `{fn.sha256[:16]}…`)"), fn.protocol()


def cached_eval(out: Path, protocol: str, name: str | None = None) -> dict:
    """A finished run's metrics under ``protocol`` (its ``evaluate(protocol)``), cached in the run directory as
    ``name`` (default eval_<protocol>.json)."""
    f = out / (name or f"eval_{protocol}.json")
    if f.is_file():
        return json.loads(f.read_text())
    from latentlab.api import load_run
    m = load_run(out).evaluate(protocol).metrics
    f.write_text(json.dumps(m, indent=2) + "\n")
    return m


def gan_test_eval(out: Path) -> dict:
    """The run's metrics against the test split (cached in the run directory)."""
    return cached_eval(out, "test", "eval_test_reference.json")


def train_gan_models(suite: str, dataset: str, models: list[str], budget: float, seeds,
                     test: bool = True) -> list[dict]:
    """Train each model for ``budget`` seconds per seed, score it on val (and test), keep seed 0's grids."""
    import shutil
    rows = []
    pics = RESULTS / suite
    pics.mkdir(parents=True, exist_ok=True)
    for name in models:
        for seed in seeds[:1] if name in GAN_ONE_SEED else seeds:
            out = OUT / suite / f"{name}_s{seed}"
            res = train_run(name, out, dataset=dataset, max_seconds=budget, data_dir=data_dir(), seed=seed,
                            **{**GAN_RUN, **GAN_PERIODIC.get(name, {})})
            row = {"method": name, "seed": seed, "steps": res.steps, "seconds": res.seconds,
                   "val": res.eval.metrics, "test": gan_test_eval(out) if test else None,
                   "protocol": res.eval.protocol, "grid": f"benchmarks/results/{suite}/{name}.png"}
            if seed == seeds[0]:
                shutil.copy(res.artifacts["samples_grid"], pics / f"{name}.png")
                if "class_grid" in res.artifacts:
                    shutil.copy(res.artifacts["class_grid"], pics / f"{name}_classes.png")
                    row["class_grid"] = f"benchmarks/results/{suite}/{name}_classes.png"
            rows.append(row)
    return rows


# -- the headline of BENCHMARKS.md: each suite's ``headline()`` reads its own results, nothing is re-run -----

def md_table(name: str, column: str) -> list[dict] | None:
    """The rows (header -> cell) of the first table in results/<name>.md with a column named ``column``; None
    when there is no such file or table (a headline then says so instead of guessing)."""
    f = RESULTS / f"{name}.md"
    if not f.is_file():
        return None
    lines = f.read_text().splitlines()
    split = lambda line: [c.strip() for c in line.strip().strip("|").split("|")]      # noqa: E731
    for i, line in enumerate(lines[:-1]):
        if line.startswith("|") and column in split(line) and lines[i + 1].startswith("| ---"):
            head, rows = split(line), []
            for row in lines[i + 2:]:
                if not row.startswith("|"):
                    break
                rows.append(dict(zip(head, split(row))))
            return rows
    return None
