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
    "uncertainty (Kendall et al.)": dict(weighting="uncertainty"),
    "GradNorm (Chen et al.)": dict(weighting="gradnorm"),
    "MGDA-UB (Sener & Koltun)": dict(weighting="mgda_ub"),
    "PCGrad (Yu et al.)": dict(weighting="pcgrad"),
}
# Sener & Koltun, NeurIPS 2018, Table 3 "Performance of MTL algorithms on MultiMNIST", accuracy (%) left / right
# (checked in the paper's text; their runs: SGD + momentum, rate searched per method, 100 epochs of batch 256).
ANCHORS = {"single task": (97.23, 95.90), "uniform scaling": (96.46, 94.99),
           "uncertainty (Kendall et al.)": (96.47, 95.29), "GradNorm (Chen et al.)": (96.27, 94.84),
           "MGDA-UB (Sener & Koltun)": (97.26, 95.90), "PCGrad (Yu et al.)": None}


def _run(tag: str, seed: int, steps: int, **over) -> dict:
    out = common.OUT / "multitask" / f"{tag}_s{seed}"
    res = train_run("multitask", out, dataset="multi_mnist", data_dir=data_dir(), seed=seed, steps=steps,
                    val_every=max(1, min(250, steps // 2)), log_every=max(1, steps // 10), ckpt_every=0, **over)
    m = res.eval.metrics
    return {"seconds": res.seconds, "best_step": res.eval.protocol["selection"], **m}


def measure(label: str, seed: int, steps: int) -> dict:
    over = ROWS[label]
    if over is None:
        l, r = _run("single_left", seed, steps, tasks="[left]"), _run("single_right", seed, steps, tasks="[right]")
        return {"label": label, "seed": seed, "left": l["test_left"], "right": r["test_right"],
                "val_left": l["val_left"], "val_right": r["val_right"], "seconds": l["seconds"] + r["seconds"]}
    tag = over["weighting"]
    m = _run(tag, seed, steps, **over)
    return {"label": label, "seed": seed, "left": m["test_left"], "right": m["test_right"],
            "val_left": m["val_left"], "val_right": m["val_right"], "seconds": m["seconds"],
            "selection": m["best_step"]}


def run(quick: bool = False) -> str:
    steps, seeds = (QUICK_STEPS, SEEDS[:1]) if quick else (STEPS, SEEDS)
    rows = [measure(label, s, steps) for label in ROWS for s in seeds]
    results = {"rows": rows, "steps": steps, "seeds": list(seeds)}
    save_json("multitask", results)
    return report(results)


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
    notes = [f"- Ordering by mean accuracy of the two tasks, ours: {_ordering(ours)}; Sener & Koltun's: "
             f"{_ordering(theirs)} ({'the same' if same else 'different'}).",
             "- Single task beats the shared network beyond seed noise for: " + (", ".join(
                 k for k, v in by.items() if k != "single task" and v
                 and beyond_noise(single, [(r["left"] + r["right"]) / 2 for r in v])) or "none") + "."]
    text = table(["weighting", "left accuracy % (test)", "right accuracy % (test)",
                  "Sener & Koltun left / right", "s per run"], body)
    proto = ("Protocol: generated MultiMNIST (`data/multitask.py`, their loader's layout, seeded), 54,000 training "
             "images, 6,000 held out for validation (2,000 measured every 250 steps), the 10,000 test images. "
             "The checkpoint with the lowest summed validation loss is read once on test; no choice sees test. "
             f"Our runs: Adam 5e-4 (their code's sample config), {steps} steps of 256 (~{steps * 256 / 54000:.0f} epochs) "
             "on this CPU; theirs: SGD with momentum at a rate searched per method, 100 epochs. "
             "Single task: the same LeNet and head trained on one task.")
    return section("Multi-task learning on MultiMNIST: five weightings", "python -m benchmarks.run multitask",
                   f"{steps} steps per run", ", ".join(map(str, seeds)), text + "\n\n" + proto,
                   "\n".join(notes), measured=measured)


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
