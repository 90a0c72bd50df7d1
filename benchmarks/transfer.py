"""Transfer learning: does a reused representation need fewer target labels? Data-efficiency curves.

    PYTHONPATH=src:. OMP_NUM_THREADS=1 python -m benchmarks.run transfer

Sources, trained on MNIST once per seed: the supervised ConvNet of configs/supervised_mnist_fast.yaml (width
16) and SimCLR (the best self-supervised method of the ssl table's MNIST linear probe) at the same width for
``SSL_STEPS`` steps. Targets: USPS and MNIST-M (mapped to the source's 28x28 grey input). For each k labels per
class, ``latentlab train finetune`` in three modes: linear (frozen encoder), finetune (all layers, the same
rate) and scratch (the architecture re-initialised), ``STEPS`` steps each, the checkpoint chosen by a labelled
validation split of the target's train (1,000 images), read once on test.
"""

from __future__ import annotations

from . import common
from .common import ROOT, beyond_noise, data_dir, fmt_mean_se, line_plot, mean_se, save_json, section, table, train_run

KS = (1, 5, 10, 50, 100, 0)                  # 0: every labelled training image
SEEDS = (0, 1, 2, 3, 4)
TARGETS = ("usps", "mnist_m")
STEPS, SSL_STEPS = 300, 600
T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57}   # Student t quantiles (0.975, n - 1 degrees of freedom)


def _k(k: int) -> str:
    return "all" if k == 0 else str(k)


def sources(seed: int, quick: bool) -> dict[str, str]:
    from latentlab.config import load_yaml
    sup = {k: v for k, v in load_yaml(ROOT / "configs" / "supervised_mnist_fast.yaml").items() if k != "method"}
    if quick:
        sup["steps"] = 5
    out = common.OUT / "transfer"
    s = train_run("supervised", out / f"src_supervised_s{seed}", **{**sup, "data_dir": data_dir(), "seed": seed,
                                                                    "log_every": 50, "ckpt_every": 0})
    c = train_run("simclr", out / f"src_simclr_s{seed}", dataset="mnist", data_dir=data_dir(), seed=seed, width=16,
                  steps=5 if quick else SSL_STEPS, knn_every=0, eval_at_end=False, log_every=50, ckpt_every=0)
    return {"supervised": str(s.run_dir), "simclr": str(c.run_dir)}


def run(quick: bool = False) -> str:
    seeds, steps = (SEEDS[:1], 4) if quick else (SEEDS, STEPS)
    rows = []
    for seed in seeds:
        src = sources(seed, quick)
        for target in TARGETS:
            for k in KS:
                jobs = [(name, mode, d) for name, d in src.items() for mode in ("linear", "finetune")]
                jobs.append(("none", "scratch", src["supervised"]))
                for name, mode, d in jobs:
                    out = common.OUT / "transfer" / f"{target}_k{_k(k)}_{name}_{mode}_s{seed}"
                    r = train_run("finetune", out, source=d, mode=mode, dataset=target, data_dir=data_dir(),
                                  labels_per_class=k, steps=steps, seed=seed, val_every=max(1, steps // 3),
                                  log_every=max(1, steps // 3), ckpt_every=0)
                    rows.append({"seed": seed, "target": target, "k": k, "source": name, "mode": mode,
                                 "test": r.eval.metrics["test_accuracy"], "val": r.eval.metrics["val_accuracy"],
                                 "n_train": r.eval.protocol["n_train"], "seconds": r.seconds})
        common.save_partial("transfer", {"rows": rows, "steps": steps, "seeds": list(seeds[:seeds.index(seed) + 1])},
                            report)
    results = {"rows": rows, "steps": steps, "seeds": list(seeds)}
    save_json("transfer", results)
    if not quick:
        plots(results)
    return report(results)


CURVES = [("supervised", "linear", "o-"), ("supervised", "finetune", "s-"), ("simclr", "linear", "o--"),
          ("simclr", "finetune", "s--"), ("none", "scratch", "k^:")]


def _cell(rows, target, k, source, mode, split="test"):
    return [r[split] for r in rows if (r["target"], r["k"], r["source"], r["mode"]) == (target, k, source, mode)]


def ci95(xs: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% Student-t interval."""
    m, se = mean_se(xs)
    return m, (T95.get(len(xs), 1.96) * se if len(xs) > 1 else float("nan"))


def plots(results) -> None:
    rows = results["rows"]
    for target in TARGETS:
        series = []
        for source, mode, fmt in CURVES:
            xs, ys, es = [], [], []
            for k in KS:
                vals = _cell(rows, target, k, source, mode)
                if vals:
                    m, h = ci95(vals)
                    xs.append(k if k else max(r["n_train"] for r in rows if r["target"] == target) // 10)
                    ys.append(m)
                    es.append(h)
            label = "scratch" if mode == "scratch" else f"{source} {mode}"
            series.append((label, fmt, xs, ys, es))
        line_plot(f"transfer_{target}", f"MNIST → {target}", "labels per class (last point: all)",
                  "test accuracy % (mean, 95% CI)", series, log2_x=True)


def report(results, measured: dict | None = None) -> str:
    rows, seeds = results["rows"], results["seeds"]
    parts = []
    for target in TARGETS:
        body = []
        for source, mode, _ in CURVES:
            cells = []
            for k in KS:
                vals = _cell(rows, target, k, source, mode)
                m, h = ci95(vals) if vals else (float("nan"), float("nan"))
                cells.append(f"{m:.1f} ± {h:.1f}" if vals and len(vals) > 1 else (f"{m:.1f}" if vals else "–"))
            body.append(["scratch" if mode == "scratch" else f"{source} → {mode}"] + cells)
        parts.append(f"**MNIST → {target}** (test accuracy %, mean ± 95% CI half-width over {len(seeds)} seeds)\n\n"
                     + table(["start"] + [f"k = {_k(k)}" for k in KS], body) +
                     f"\n\n![MNIST → {target}](transfer_{target}.png)")
    ok, evidence = claim(results)
    head = (f"**Claim: the reused representation needs fewer target labels — {'PASS' if ok else 'FAIL'}** "
            f"({evidence}).")
    proto = ("Protocol: target training images minus a 10% validation split (its first 1,000 images measure every "
             f"{max(1, results['steps'] // 3)} steps and pick the checkpoint; labelled, as in the usual few-label "
             "protocol); k images per class drawn per seed; test read once. USPS is resized 16 → 28, MNIST-M "
             "converted to luma and resized 32 → 28. Every seed retrains its sources. The ± here is a 95% "
             "Student-t interval, not the standard error used elsewhere.")
    return section("Transfer learning: data-efficiency curves (MNIST → USPS, MNIST → MNIST-M)",
                   "python -m benchmarks.run transfer", f"{results['steps']} steps per target run",
                   ", ".join(map(str, seeds)), head + "\n\n" + "\n\n".join(parts) + "\n\n" + proto, measured=measured)


def claim(results) -> tuple[bool, str]:
    """The lecture's claim, the one rule of this section and of the claims table: from the MNIST classifier
    (linear or finetune, chosen on mean validation accuracy) the target test accuracy is above scratch's beyond
    2 s.e. at k = 1, 5, 10 on both targets."""
    rows, ok, parts = results["rows"], True, []
    for target in TARGETS:
        for k in (1, 5, 10):
            mode = max(("linear", "finetune"), key=lambda m: mean_se(_cell(rows, target, k, "supervised", m, "val"))[0])
            a, b = _cell(rows, target, k, "supervised", mode), _cell(rows, target, k, "none", "scratch")
            ok &= beyond_noise(a, b)
            parts.append(f"{target} k={k}: {mode} {fmt_mean_se(a, 1)} vs scratch {fmt_mean_se(b, 1)}")
    return ok, ("test accuracy % (mean ± s.e.) from the MNIST classifier, linear or finetune chosen on validation, "
                "vs the same network from scratch: " + "; ".join(parts) +
                ". Rule: reuse above scratch beyond 2 s.e. at every k <= 10 on both targets")


def headline() -> tuple[str, str] | None:
    return common.claim_headline("transfer", "lecture: transfer needs fewer labels (qualitative)")
