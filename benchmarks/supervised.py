"""supervised ConvNet: test accuracy on MNIST and USPS, wall time, seconds to reach 99% on MNIST."""

from __future__ import annotations

import time

import torch

from latentlab.engine import load_run
from latentlab.engine.logging import read_metrics
from latentlab.methods.supervised import accuracy

from .common import OUT, data_dir, save_json, section, table, train_run

PLAN = {"mnist": dict(steps=6000, ckpt_every=250), "usps": dict(steps=2000, ckpt_every=250)}


def _curve(run_dir, every, test):
    """Test accuracy of every periodic checkpoint -> [(step, seconds, acc)] (a time-to-accuracy curve,
    never used to pick a model)."""
    elapsed = {r["step"]: r["elapsed_s"] for r in read_metrics(run_dir) if "elapsed_s" in r}
    out = []
    for ck in sorted((run_dir / "checkpoints").glob("step_*.ckpt")):
        step = int(ck.stem.split("_")[1])
        m = load_run(run_dir, checkpoint=ck)
        acc = accuracy(m.model, test.images, test.labels, m.prepare_images, 2000)
        out.append((step, elapsed.get(step, float("nan")), acc))
    return out


def run(quick: bool = False) -> str:
    rows, raw = [], {}
    for ds, plan in PLAN.items():
        kw = dict(dataset=ds, seed=0, log_every=250, data_dir=data_dir(), **plan)
        if quick:
            kw.update(steps=40, ckpt_every=20, log_every=20)
        out = OUT / "supervised" / ds
        r = train_run("supervised", out, **kw)
        m = load_run(out)
        curve = _curve(out, kw["ckpt_every"], m.test_set) if ds == "mnist" else []
        t99 = next((f"{t:.0f} s (step {s})" for s, t, a in curve if a >= 0.99), "not reached")
        raw[ds] = dict(metrics=r.eval.metrics, seconds=r.seconds, steps=r.steps, curve=curve)
        rows.append([ds, "convnet (32-64 conv, 128-d FC)", kw["steps"], 64,
                     f"{100 * r.eval.metrics['test_accuracy']:.2f}", f"{100 * r.eval.metrics.get('val_accuracy', float('nan')):.2f}",
                     f"{r.seconds:.0f}", f"{r.steps * 64 / r.seconds:.0f}", t99 if ds == "mnist" else ""])
    save_json("supervised", raw)
    body = table(["dataset", "network", "steps", "batch", "test acc %", "val acc %", "train s", "images/s",
                  "time to 99% test acc"], rows)
    notes = ("Adam lr 1e-3, channels_last, 10% of train held out for validation; the reported accuracy is the last "
             "step's (no selection on test). Time to 99% reads the test accuracy of the periodic checkpoints "
             "(every 250 steps) against the training wall time logged at that step. Anchor: LeCun et al. (1998) report "
             "0.95% test error (99.05%) for LeNet-5 on MNIST.")
    return section("supervised: MNIST and USPS", "python -m benchmarks.run supervised",
                   "MNIST 6,000 steps (6.4 epochs), USPS 2,000 steps", "0", body, notes)
