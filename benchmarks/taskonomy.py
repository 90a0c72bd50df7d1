"""Task relations at digit scale: a Taskonomy transfer matrix, Standley et al.'s task grouping, negative transfer.

    PYTHONPATH=src:. OMP_NUM_THREADS=1 python -m benchmarks.run taskonomy

All networks are ``latentlab train multitask`` on the generated ``digit_tasks`` bank (one noisy 32x32 image set,
seven targets) with the method's LeNet defaults for ``STEPS`` steps of 128; each keeps its checkpoint of lowest
validation loss (10% of train held out); the learning rate and dropout are screened first (``RECIPES``) on
a class network's validation accuracy.

1. Transfer matrix (Zamir et al. 2018): a single-task network per source task (its trunk is the encoder), frozen;
   for each target a readout (the target's two-layer head) trained on ``READOUT_N`` labelled images; beside it a
   whole network trained from scratch on the same images. Cells: the target's error relative to scratch, and
   the AHP affinities (``eval/taskonomy.py``) from the per-image test losses.
2. Grouping (Standley et al. 2020): four tasks, every single and pair network; a grouping of at most two
   networks chosen by the higher-order approximation from *validation* metrics, then trained and compared on
   test against all-in-one and all-separate networks at the same compute (``BUDGET`` full networks, widths
   scaled by sqrt(budget / networks)).
3. Negative transfer: the pair whose joint training hurts a member most on validation, beyond seed noise on
   test, and how the split point and the width change it.
"""

from __future__ import annotations

import itertools
import math

from . import common
from .common import beyond_noise, data_dir, fmt_mean_se, mean_se, section, table, train_run

STEPS, QUICK_STEPS = 1000, 6
READOUT_STEPS, READOUT_N = 300, 1000
SEEDS = (0, 1, 2)
MATRIX_SEEDS = 2                               # the transfer matrix's 7 x 8 readouts: the first two seeds
GROUP_TASKS = ("class", "angle", "position", "edges")
BUDGET = 2                                     # full-size networks of compute for the grouping comparison
SPLITS = ("conv1", "conv2", "fc")
WIDTHS = (0.5, 1.0, 2.0)                       # size factors for the negative-transfer sweep


def _tasks():
    from latentlab.data.multitask import TASKS
    return TASKS["digit_tasks"]


def err(task: str, value: float) -> float:
    """A task's metric as an error (lower is better): 100 - accuracy, or the metric itself."""
    return 100.0 - value if _tasks()[task].higher_is_better else value


def _size(f: float) -> dict:
    return dict(width=max(1, round(10 * f)), num_features=max(1, round(50 * f)))


RECIPES = ({"lr": 5e-4, "dropout": 0.5}, {"lr": 5e-4, "dropout": 0.0}, {"lr": 2e-3, "dropout": 0.5},
           {"lr": 2e-3, "dropout": 0.0})         # the method's defaults first; screened on the class task
RECIPE: dict = dict(RECIPES[0])                  # set by choose_recipe() before the other networks train


def _tag(recipe: dict) -> str:
    return "" if recipe == RECIPES[0] else f"_lr{recipe['lr']:g}_d{recipe['dropout']:g}"


def choose_recipe(steps: int) -> dict:
    """The (lr, dropout) with the best validation accuracy of a class network, seed 0 (test not read)."""
    scores = {}
    for r in RECIPES:
        RECIPE.clear(), RECIPE.update(r)
        scores[_tag(r) or "default"] = (net(["class"], 0, steps)["val"]["class"], r)
    best = max(scores.values(), key=lambda v: v[0])[1]
    RECIPE.clear(), RECIPE.update(best)
    return {"chosen": dict(best), "val_class_accuracy": {k: v[0] for k, v in scores.items()}}


def net(tasks, seed: int, steps: int, f: float = 1.0, split: str = "fc", tag: str = "", **over) -> dict:
    name = ("+".join(tasks) + (f"_{split}" if split != "fc" else "") + (f"_x{f:g}" if f != 1 else "") + tag
            + _tag(RECIPE))
    out = common.OUT / "taskonomy" / f"{name}_s{seed}"
    res = train_run("multitask", out, dataset="digit_tasks", data_dir=data_dir(), tasks="[" + ",".join(tasks) + "]",
                    seed=seed, steps=steps, batch_size=128, split=split, val_every=max(1, min(250, steps // 2)),
                    log_every=max(1, steps // 4), ckpt_every=0, **_size(f), **RECIPE, **over)
    m = res.eval.metrics
    return {"dir": str(out), "tasks": list(tasks), "seed": seed, "f": f, "split": split, "seconds": res.seconds,
            "test": {t: m[f"test_{t}"] for t in tasks}, "val": {t: m[f"val_{t}"] for t in tasks}}


def per_sample_test(run_dir: str, task: str):
    from latentlab.api import load_run
    from latentlab.modules import unwrap
    m = load_run(run_dir)
    return m.measure(unwrap(m.encoder()), m.test_set, per_sample=True)["per_sample"][task]


# -- 1. transfer matrix -----------------------------------------------------------------------------------------
def transfer_matrix(seed: int, steps: int, readout_steps: int) -> dict:
    tasks = list(_tasks())
    sources = {s: net([s], seed, steps) for s in tasks}
    cells, per_sample = {}, {}
    for t in tasks:
        scratch = net([t], seed, readout_steps, tag=f"_scratch{READOUT_N}", train_samples=READOUT_N)
        losses = {"scratch": per_sample_test(scratch["dir"], t)}
        cells[t] = {"scratch": scratch["test"][t]}
        for s in tasks:
            r = net([t], seed, readout_steps, tag=f"_from_{s}", train_samples=READOUT_N, freeze_shared="true",
                    init_from=f"{sources[s]['dir']}:net:shared.")
            cells[t][s] = r["test"][t]
            losses[s] = per_sample_test(r["dir"], t)
        from latentlab.eval.taskonomy import ahp_affinities
        per_sample[t] = ahp_affinities(losses)
    return {"seed": seed, "test": cells, "ahp": per_sample,
            "sources": {s: r["test"][s] for s, r in sources.items()}}


# -- 2. grouping ------------------------------------------------------------------------------------------------
def _rel(runs: list[dict], task: str, split: str, single: dict) -> float:
    """Mean over seeds of the task's error relative to its single-task network's (same seed)."""
    return mean_se([err(task, r[split][task]) / err(task, single[r["seed"]][split][task]) for r in runs])[0]


def grouping(seeds, steps: int) -> dict:
    T = list(GROUP_TASKS)
    singles = {t: {s: net([t], s, steps) for s in seeds} for t in T}
    pair_runs = {frozenset(p): [net(list(p), s, steps) for s in seeds] for p in itertools.combinations(T, 2)}
    # the choice reads validation only: relative validation errors (1 = as good as the single-task network)
    single_val = {t: 1.0 for t in T}
    pair_val = {p: {t: _rel(runs, t, "val", singles[t]) for t in p} for p, runs in pair_runs.items()}
    from latentlab.eval.taskonomy import best_grouping
    chosen, predicted = best_grouping(T, single_val, pair_val, networks=BUDGET)
    f = lambda k: math.sqrt(BUDGET / k)                                        # noqa: E731  size at equal compute
    layouts = {"all-in-one (1 network)": [tuple(T)], "all separate (4 networks)": [(t,) for t in T],
               f"chosen ({len(chosen)} networks)": chosen}
    results = {}
    for label, groups in layouts.items():
        per_seed = []
        for s in seeds:
            got = {}
            for g in groups:
                r = net(list(g), s, steps, f=f(len(groups)))
                for t in g:                                                      # a task served by its best network
                    if t not in got or err(t, r["val"][t]) < err(t, got[t]["val"]):
                        got[t] = {"val": r["val"][t], "test": r["test"][t]}
            per_seed.append({t: got[t]["test"] for t in T})
        results[label] = {"groups": [list(g) for g in groups], "test": per_seed,
                          "total_rel": [sum(err(t, ps[t]) / err(t, singles[t][s]["test"][t]) for t in T)
                                        for s, ps in zip(seeds, per_seed)]}
    return {"tasks": T, "chosen": [list(g) for g in chosen], "predicted": predicted,
            "pair_val": {"+".join(sorted(p)): v for p, v in pair_val.items()},
            "singles": {t: {str(s): r["test"][t] for s, r in v.items()} for t, v in singles.items()},
            "pairs": {"+".join(sorted(p)): [r["test"] for r in runs] for p, runs in pair_runs.items()},
            "layouts": results}


# -- 3. negative transfer --------------------------------------------------------------------------------------
def negative_transfer(seeds, steps: int, group: dict) -> dict:
    worst = max(((p, t, v) for p, d in group["pair_val"].items() for t, v in d.items()), key=lambda x: x[2])
    pair, task, _ = worst
    a, b = pair.split("+")
    rows = []
    for f in WIDTHS:
        for split in SPLITS if f == 1.0 else ("fc",):
            joint = [net([a, b], s, steps, f=f, split=split) for s in seeds]
            alone = {t: [net([t], s, steps, f=f) for s in seeds] for t in (a, b)}
            rows.append({"f": f, "split": split, **{t: {"joint": [err(t, r["test"][t]) for r in joint],
                                                        "alone": [err(t, r["test"][t]) for r in alone[t]]}
                                                    for t in (a, b)}})
    return {"pair": [a, b], "worst_task_on_val": task, "rows": rows}


def run(quick: bool = False) -> str:
    steps, rsteps, seeds = (QUICK_STEPS, QUICK_STEPS, SEEDS[:1]) if quick else (STEPS, READOUT_STEPS, SEEDS)
    recipe = choose_recipe(steps)
    group = grouping(seeds, steps)
    neg = negative_transfer(seeds, steps, group)
    results = {"steps": steps, "readout_steps": rsteps, "readout_n": READOUT_N, "seeds": list(seeds), "recipe": recipe,
               "matrix": [], "grouping": group, "negative": neg}
    common.save_partial("taskonomy", results, report)          # each part as it is measured
    for s in seeds[:MATRIX_SEEDS]:
        results["matrix"].append(transfer_matrix(s, steps, rsteps))
        common.save_partial("taskonomy", results, report)
    heatmap(results)
    return report(results)


def heatmap(results) -> None:
    import os
    if os.environ.get("LATENTLAB_BENCH_QUICK") or not results["matrix"]:       # --quick records nothing
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    tasks = list(results["matrix"][0]["ahp"])
    sources = ["scratch"] + tasks
    A = np.array([[np.mean([m["ahp"][t][s] for m in results["matrix"]]) for t in tasks] for s in sources])
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    im = ax.imshow(A, cmap="viridis")
    ax.set_xticks(range(len(tasks)), tasks, rotation=45, ha="right")
    ax.set_yticks(range(len(sources)), sources)
    ax.set_xlabel("target task (readout)")
    ax.set_ylabel("source task (frozen trunk)")
    for i in range(len(sources)):
        for j in range(len(tasks)):
            ax.text(j, i, f"{A[i, j]:.2f}", ha="center", va="center", color="w" if A[i, j] < A.max() / 2 else "k",
                    fontsize=7)
    ax.set_title("AHP affinity of each source for each target (columns sum to 1)")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    common.RESULTS.mkdir(parents=True, exist_ok=True)
    fig.savefig(common.RESULTS / "taskonomy_affinity.png", dpi=120)
    plt.close(fig)


def report(results, measured: dict | None = None) -> str:
    from latentlab.data.multitask import TASKS
    specs = TASKS["digit_tasks"]
    mats, seeds = results["matrix"], results["seeds"]
    mseeds = [m["seed"] for m in mats]
    tasks = list(mats[0]["ahp"]) if mats else list(specs)
    # relative error of each readout vs scratch, per seed: err(transfer) / err(scratch)
    rel = lambda t, s: [err(t, m["test"][t][s]) / err(t, m["test"][t]["scratch"]) for m in mats]  # noqa: E731
    head = ["source \\ target"] + [f"{t} ({specs[t].metric})" for t in tasks]
    rows, ahp = [], []
    if mats:
        rows = [["scratch on the subset"] + [fmt_mean_se([m["test"][t]["scratch"] for m in mats], 2) for t in tasks]]
        rows += [[s] + [f"{fmt_mean_se(rel(t, s), 2)}" for t in tasks] for s in tasks]
        ahp = [[s] + [fmt_mean_se([m["ahp"][t][s] for m in mats], 2) for t in tasks] for s in ["scratch"] + tasks]
    best_src = {t: max(tasks, key=lambda s: mean_se([m["ahp"][t][s] for m in mats])[0] if s != t else -1)
                for t in tasks} if mats else {}
    g = results["grouping"]
    lay = g["layouts"]
    grows = [[label, " / ".join("+".join(x) for x in v["groups"]), fmt_mean_se(v["total_rel"], 2)] +
             [fmt_mean_se([ps[t] for ps in v["test"]], 2) for t in g["tasks"]] for label, v in lay.items()]
    chosen_label = next(k for k in lay if k.startswith("chosen"))
    ch, one, sep = (lay[k]["total_rel"] for k in (chosen_label, "all-in-one (1 network)", "all separate (4 networks)"))
    neg = results["negative"]
    a, b = neg["pair"]
    nrows, hurt = [], []
    for r in neg["rows"]:
        cells = [f"x{r['f']:g}", r["split"]]
        for t in (a, b):
            j, s = r[t]["joint"], r[t]["alone"]
            worse = beyond_noise(j, s)
            cells += [fmt_mean_se(j, 2), fmt_mean_se(s, 2), "**worse**" if worse else ("better" if beyond_noise(s, j) else "≈")]
            if worse:
                hurt.append(f"{t} at width x{r['f']:g}, split {r['split']}")
        nrows.append(cells)
    matrix_part = ["### 1. Transfer matrix\n\nNot measured yet: the suite measures it after the grouping and "
                   "the negative-transfer sweep (`python -m benchmarks.run taskonomy` continues from its cached runs)."]
    if mats:
        matrix_part = [
        f"### 1. Transfer matrix (frozen trunk of a source network, readout trained on {results['readout_n']} "
        f"labelled images; seeds {', '.join(map(str, mseeds))})\n\nFirst row: the target's test metric of a whole network trained from scratch on those "
        "images. Other rows: the readout's test error relative to scratch's (error: 100 - accuracy, or the "
        "metric; < 1: the source's representation helps).\n\n" + table(head, rows),
        "AHP affinities (Taskonomy's ordinal normalisation of the per-image test losses; each column sums to 1 "
        "over scratch and the seven sources):\n\n" + table(["source \\ target"] + tasks, ahp) +
        "\n\n![AHP affinities](taskonomy_affinity.png)\n\nMost useful other source per target (AHP): " +
        ", ".join(f"{t} ← {s}" for t, s in best_src.items()) + "."]
    body = "\n\n".join(matrix_part + [
        f"### 2. Task grouping (Standley et al.) at a budget of {BUDGET} networks\n\nPair networks' relative "
        "validation errors (1 = the single-task network): " + "; ".join(
            f"{p}: " + ", ".join(f"{t} {v:.2f}" for t, v in d.items()) for p, d in g["pair_val"].items()) +
        f".\n\nChosen from them (validation only): {' / '.join('+'.join(x) for x in g['chosen'])} (predicted total "
        f"relative error {g['predicted']:.2f}). Trained at equal compute and read on test:\n\n" +
        table(["layout", "networks", "total relative error ↓ (4 = single-task networks)"] +
              [f"{t} ({specs[t].metric})" for t in g["tasks"]], grows) +
        f"\n\nChosen vs all-in-one: {'better beyond noise' if beyond_noise(one, ch) else 'not better beyond noise'}; "
        f"chosen vs all separate: {'better beyond noise' if beyond_noise(sep, ch) else 'not better beyond noise'}.",
        f"### 3. Negative transfer: {a} + {b}\n\nThe pair whose joint training hurt a member most on validation "
        f"({neg['worst_task_on_val']}); test errors, joint vs alone, by width (x: size factor of the LeNet) and "
        "split point (errors: 100 - accuracy for class tasks, else the metric; lower is better):\n\n" +
        table(["width", "split", f"{a} error joint", f"{a} error alone", f"{a}", f"{b} error joint",
               f"{b} error alone", f"{b}"], nrows) +
        "\n\nNegative transfer beyond seed noise: " + ("; ".join(hurt) if hurt else "none measured") + "."])
    rec = results.get("recipe")
    recipe_line = (f"Recipe screened on seed 0's validation accuracy of a class network: " + ", ".join(
        f"{k}: {v:.1f}%" for k, v in rec["val_class_accuracy"].items()) + f"; every network uses lr "
        f"{rec['chosen']['lr']:g}, dropout {rec['chosen']['dropout']:g}. ") if rec else ""
    proto = (recipe_line + "Protocol: `digit_tasks` (generated from MNIST, seeded; 54,000 training images, 6,000 held out for "
             "validation of which 2,000 are measured every 250 steps; 10,000 test). Every network keeps its "
             "lowest-validation-loss checkpoint; the grouping and the negative-transfer pair are chosen on "
             "validation; test is read once per network. Errors are in each task's metric (accuracy as "
             "100 - accuracy). Our scale: LeNet networks of 1,000 steps; Taskonomy: 26 tasks, ResNet-50 encoders "
             "on 4M images; Standley et al.: 5 Taskonomy tasks, budgets of 1-5 networks.")
    return section("Task relations: transfer matrix, grouping, negative transfer (digit_tasks)",
                   "python -m benchmarks.run taskonomy",
                   f"{results['steps']} steps per network, readouts {results['readout_steps']} steps",
                   ", ".join(map(str, seeds)), body + "\n\n" + proto, measured=measured)


def headline() -> tuple[str, str] | None:
    res = common.load_json("taskonomy")
    if not res:
        return None
    lay = res["grouping"]["layouts"]
    cells = ", ".join(f"{k.split(' (')[0]} {fmt_mean_se(v['total_rel'], 2)}" for k, v in lay.items())
    return (f"Task grouping, total relative error (4 = single-task networks): {cells}",
            "Standley et al. 2020: chosen groupings beat all-in-one and all-separate")
