"""Multi-task weighting on MultiMNIST (Sener & Koltun 2018, Table 3), measured.

    PYTHONPATH=src:. OMP_NUM_THREADS=1 python -m benchmarks.run multitask

Every row is ``latentlab train multitask`` on the generated ``multi_mnist`` set (LeNet trunk of their code,
Adam 5e-4, batch 256) for ``STEPS`` steps, seeds ``SEEDS``: the single-task networks (one task each, the same
network), uniform scaling and the four adaptive weightings. Each run keeps the checkpoint with the lowest
validation loss (10% of train held out, 2,000 images, checked every 250 steps) and is read once on test.
"""

from __future__ import annotations

from . import common
from .common import RESULTS, beyond_noise, data_dir, fmt_mean_se, mean_se, measured_header, save_json, section, table, train_run

STEPS, QUICK_STEPS = 1500, 20
SEEDS = (0, 1, 2, 3, 4)
ROWS = {                      # label -> overrides of the multitask defaults
    "single task": None,      # two runs: tasks=[left], tasks=[right]
    "uniform scaling": dict(weighting="uniform"),
    "static weights, tuned on validation": "tuned",   # task_weights chosen from GRID on seed 0's validation
    "uncertainty (Kendall et al.)": dict(weighting="uncertainty"),
    "GradNorm (Chen et al.)": dict(weighting="gradnorm"),
    "MGDA-UB (Sener & Koltun)": dict(weighting="mgda_ub"),
    "PCGrad (Yu et al.)": dict(weighting="pcgrad"),
}
# Sener & Koltun, NeurIPS 2018, Table 3 "Performance of MTL algorithms on MultiMNIST", accuracy (%) left / right
# (checked in the paper's text; their runs: SGD + momentum, rate searched per method, 100 epochs of batch 256).
ANCHORS = {"single task": (97.23, 95.90), "uniform scaling": (96.46, 94.99),
           "static weights, tuned on validation": None, "uncertainty (Kendall et al.)": (96.47, 95.29), "GradNorm (Chen et al.)": (96.27, 94.84),
           "MGDA-UB (Sener & Koltun)": (97.26, 95.90), "PCGrad (Yu et al.)": None}


def _run(tag: str, seed: int, steps: int, **over) -> dict:
    length = "" if steps in (STEPS, QUICK_STEPS) else f"_{steps}steps"        # the longer runs' own directories
    out = common.OUT / "multitask" / f"{tag}{length}_s{seed}"
    res = train_run("multitask", out, dataset="multi_mnist", data_dir=data_dir(), seed=seed, steps=steps,
                    val_every=max(1, min(250, steps // 2)), log_every=max(1, steps // 10), ckpt_every=0, **over)
    m = res.eval.metrics
    return {"seconds": res.seconds, "best_step": res.eval.protocol["selection"], **m}


GRID = ((0.5, 1.5), (1.0, 1.0), (1.5, 0.5))   # (left, right) weights; (1, 1) is uniform scaling


def tune_weights(steps: int) -> dict:
    """The static weights with the best mean validation accuracy of seed 0 (test not read)."""
    scores = {}
    for w in GRID:
        m = _run("uniform" if w == (1.0, 1.0) else f"weights_{w[0]:g}_{w[1]:g}", 0, steps, weighting="uniform",
                 **({} if w == (1.0, 1.0) else {"task_weights": f"[{w[0]},{w[1]}]"}))
        scores[w] = (m["val_left"] + m["val_right"]) / 2
    best = max(scores, key=scores.get)
    return {"chosen": list(best), "val_mean_accuracy": {f"{a:g}/{b:g}": v for (a, b), v in scores.items()}}


def measure(label: str, seed: int, steps: int, tuned: dict | None = None) -> dict:
    over = ROWS[label]
    if over == "tuned":
        w = tuple(tuned["chosen"])
        over = dict(weighting="uniform", **({} if w == (1.0, 1.0) else {"task_weights": f"[{w[0]},{w[1]}]"}))
        tag = "uniform" if w == (1.0, 1.0) else f"weights_{w[0]:g}_{w[1]:g}"
        m = _run(tag, seed, steps, **over)
        return {"label": label, "seed": seed, "left": m["test_left"], "right": m["test_right"],
                "val_left": m["val_left"], "val_right": m["val_right"], "seconds": m["seconds"], "weights": list(w)}
    if over is None:
        l, r = _run("single_left", seed, steps, tasks="[left]"), _run("single_right", seed, steps, tasks="[right]")
        return {"label": label, "seed": seed, "left": l["test_left"], "right": r["test_right"],
                "val_left": l["val_left"], "val_right": r["val_right"], "seconds": l["seconds"] + r["seconds"]}
    tag = over["weighting"]
    m = _run(tag, seed, steps, **over)
    return {"label": label, "seed": seed, "left": m["test_left"], "right": m["test_right"],
            "val_left": m["val_left"], "val_right": m["val_right"], "seconds": m["seconds"],
            "selection": m["best_step"]}


# The second attempt at the paper's ordering: the three rows that define it at 3x the length (~21 epochs), seeds
# 0-2; the 1,500-step runs all chose their last checkpoint, so they were still improving.
LONG_STEPS, LONG_SEEDS = 4500, (0, 1, 2)
LONG_ROWS = ("single task", "uniform scaling", "MGDA-UB (Sener & Koltun)")


def run(quick: bool = False) -> str:
    steps, seeds = (QUICK_STEPS, SEEDS[:1]) if quick else (STEPS, SEEDS)
    tuned = tune_weights(steps)
    rows = [measure(label, s, steps, tuned) for label in ROWS for s in seeds]
    results = {"rows": rows, "steps": steps, "seeds": list(seeds), "tuned": tuned}
    save_json("multitask", results)
    long_steps, long_seeds = (2 * QUICK_STEPS, LONG_SEEDS[:1]) if quick else (LONG_STEPS, LONG_SEEDS)
    results["long"] = {"steps": long_steps, "seeds": list(long_seeds), "rows": []}
    for s in long_seeds:
        results["long"]["rows"] += [measure(label, s, long_steps) for label in LONG_ROWS]
        common.save_partial("multitask", results, report)
    return report(results)


def long_report(long: dict) -> str:
    """The longer runs' table and whether they order the rows as Sener & Koltun."""
    by = {label: [r for r in long["rows"] if r["label"] == label] for label in LONG_ROWS}
    body = [[label, fmt_mean_se([r["left"] for r in rs], 2), fmt_mean_se([r["right"] for r in rs], 2),
             f"{ANCHORS[label][0]:.2f} / {ANCHORS[label][1]:.2f}"] for label, rs in by.items() if rs]
    ours = {k: mean_se([(r["left"] + r["right"]) / 2 for r in v])[0] for k, v in by.items() if v}
    theirs = {k: sum(ANCHORS[k]) / 2 for k in ours}
    last = [r for r in long["rows"] if f"chosen step {long['steps']})" in r.get("selection", "")]
    multi = [r for r in long["rows"] if "selection" in r]
    seeds = sorted({r["seed"] for r in long["rows"]})                          # the seeds measured so far
    return (f"**At {long['steps']} steps (~{long['steps'] * 256 / 54000:.0f} epochs), seeds "
            f"{', '.join(map(str, seeds))}** (the rows that define the paper's ordering):\n\n"
            + table(["weighting", "left accuracy % (test)", "right accuracy % (test)", "Sener & Koltun"], body)
            + f"\n\nOrdering ours: {_ordering(ours)}; theirs: {_ordering(theirs)} "
              f"({'the same' if _ordering(ours) == _ordering(theirs) else 'different'}). "
              f"The last checkpoint was chosen in {len(last)} of {len(multi)} shared-network runs.")


def _ordering(means: dict) -> str:
    return " > ".join(sorted(means, key=lambda k: -means[k]))


def report(results, measured: dict | None = None) -> str:
    rows, steps, seeds = results["rows"], results["steps"], results["seeds"]
    by = {label: [r for r in rows if r["label"] == label] for label in ROWS}
    body = []
    for label, rs in by.items():
        if not rs:
            continue
        anchor = ANCHORS[label]
        left, right = [r["left"] for r in rs], [r["right"] for r in rs]
        body.append([label, fmt_mean_se(left, 2), fmt_mean_se(right, 2),
                     f"{anchor[0]:.2f} / {anchor[1]:.2f}" if anchor else "–",
                     f"{mean_se([r['seconds'] for r in rs])[0]:.0f}"])
    ours = {k: mean_se([(r["left"] + r["right"]) / 2 for r in v])[0] for k, v in by.items() if v and ANCHORS[k]}
    theirs = {k: sum(ANCHORS[k]) / 2 for k in ours}
    same = _ordering(ours) == _ordering(theirs)
    single = [(r["left"] + r["right"]) / 2 for r in by["single task"]]
    tuned = results.get("tuned")
    notes = ([f"- Static weights (left / right) tried on seed 0's validation split: " + ", ".join(
        f"{k}: {v:.2f}%" for k, v in tuned["val_mean_accuracy"].items()) + f"; chosen {tuned['chosen'][0]:g} / "
        f"{tuned['chosen'][1]:g}."] if tuned else []) + [f"- Ordering by mean accuracy of the two tasks, ours: {_ordering(ours)}; Sener & Koltun's: "
             f"{_ordering(theirs)} ({'the same' if same else 'different'}).",
             "- Single task beats the shared network beyond seed noise for: " + (", ".join(
                 k for k, v in by.items() if k != "single task" and v
                 and beyond_noise(single, [(r["left"] + r["right"]) / 2 for r in v])) or "none") + "."]
    _bars(by)
    last = [r for r in rows if f"chosen step {steps})" in r.get("selection", "")]
    multi = [r for r in rows if "selection" in r]
    if multi:
        notes.append(f"- The checkpoint chosen on validation was the last one in {len(last)} of {len(multi)} shared-network "
                     "runs: at this length the networks are still improving.")
    text = table(["weighting", "left accuracy % (test)", "right accuracy % (test)",
                  "Sener & Koltun left / right", "s per run (single task: both networks)"], body)
    proto = ("Protocol: generated MultiMNIST (`data/multitask.py`, their loader's layout, seeded), 54,000 training "
             "images, 6,000 held out for validation (2,000 measured every 250 steps), the 10,000 test images. "
             "The checkpoint with the lowest summed validation loss is read once on test; no choice sees test. "
             f"Our runs: Adam 5e-4 (their code's sample config), {steps} steps of 256 (~{steps * 256 / 54000:.0f} epochs) "
             "on this CPU; theirs: SGD with momentum at a rate searched per method, 100 epochs. "
             "Single task: the same LeNet and head trained on one task. Seconds: one thread per run, with other "
             "benchmarks sharing the 2 cores (noisy; compare within a column only roughly).")
    long = results.get("long")
    extra = ("\n\n" + long_report(long)) if long and long["rows"] else ""
    return section("Multi-task learning on MultiMNIST: five weightings", "python -m benchmarks.run multitask",
                   f"{steps} steps per run" + (f"; the longer runs {long['steps']}" if extra else ""),
                   ", ".join(map(str, seeds)),
                   text + "\n\n![MultiMNIST accuracies](multitask.png)" + extra + "\n\n" + proto,
                   "\n".join(notes), measured=measured)


def _bars(by: dict) -> None:
    """Left / right test accuracy per weighting, ours (mean ± s.e.) beside Sener & Koltun's."""
    import os
    if os.environ.get("LATENTLAB_BENCH_QUICK"):
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    labels = [k for k, v in by.items() if v]
    fig, ax = plt.subplots(1, 2, figsize=(11, 3.6), sharey=False)
    for j, side in enumerate(("left", "right")):
        ours = [mean_se([r[side] for r in by[k]]) for k in labels]
        x = range(len(labels))
        ax[j].bar([i - 0.2 for i in x], [m for m, _ in ours], 0.4, yerr=[e for _, e in ours], label="ours", capsize=3)
        ax[j].bar([i + 0.2 for i in x], [ANCHORS[k][j] if ANCHORS[k] else 0 for k in labels], 0.4,
                  label="Sener & Koltun (100 epochs)", color="0.7")
        ax[j].set_xticks(list(x), [k.split(" (")[0] for k in labels], rotation=30, ha="right")
        lo = min(m for m, _ in ours) - 2
        ax[j].set_ylim(lo, 100)
        ax[j].set_title(f"{side} digit, test accuracy %")
    handles, names = ax[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="upper center", ncol=2, fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    common.RESULTS.mkdir(parents=True, exist_ok=True)
    fig.savefig(common.RESULTS / "multitask.png", dpi=110)
    plt.close(fig)


def headline() -> tuple[str, str] | None:
    res = common.load_json("multitask")
    if not res:
        return None
    by = {}
    for r in res["rows"]:
        by.setdefault(r["label"], []).append((r["left"] + r["right"]) / 2)
    best = max(by, key=lambda k: mean_se(by[k])[0])
    return (f"MultiMNIST mean accuracy: best {best} {fmt_mean_se(by[best], 2)}%, uniform "
            f"{fmt_mean_se(by.get('uniform scaling', [0]), 2)}%",
            "Sener & Koltun 2018 Table 3: MGDA-UB 97.26 / 95.90, uniform 96.46 / 94.99")
