"""Does the MNIST-M gap between self-supervised and supervised features close with a longer CPU budget?

The two strongest self-supervised candidates of the ``ssl`` suite on MNIST-M (SimCLR and RotNet, both with
``augment=digits_strong``) and the supervised ConvNet train for increasing, equal wall-time budgets; each
run is probed like the ``ssl`` suite (linear on ``forward_features`` and on the conv maps, k-NN). The
60 s budget is repeated over 3 seeds (training seed: initialisation, data order, views) so the gap is
shown against the seed-to-seed spread.
"""

from __future__ import annotations

import statistics

import torch

from ..common import fmt_pct, probe_note, save_json, section, table, train_and_probe

METHODS = {"supervised": {}, "simclr": dict(augment="digits_strong"), "rotnet": dict(augment="digits_strong")}
PLAN = ((60.0, (0, 1, 2)), (240.0, (0,)), (960.0, (0,)))         # (seconds, training seeds)


def run(quick: bool = False) -> str:
    torch.set_num_threads(1)
    plan = ((2.0, (0,)),) if quick else PLAN
    max_train, max_val = (500, 200) if quick else (5000, 2000)
    raw = []
    for secs, seeds in plan:
        for seed in seeds:
            tag = f"-budget{secs:g}" + (f"-seed{seed}" if seed else "")
            res = {m: train_and_probe(m, "mnist_m", secs, max_train, max_val, tag=tag, seed=seed, **kw)
                   for m, kw in METHODS.items()}
            raw.append({"seconds": secs, "seed": seed, **res})
    save_json("ssl_budget", raw)
    return report(raw, quick)


def report(raw: list[dict], quick: bool = False, measured: dict | None = None) -> str:
    """The section from the study's results (``results/ssl_budget.json``): no training."""
    max_train, max_val = (500, 200) if quick else (5000, 2000)
    plan = [(secs, [r["seed"] for r in raw if r["seconds"] == secs]) for secs in dict.fromkeys(r["seconds"] for r in raw)]
    rows = []
    for secs, seeds in plan:
        runs = [r for r in raw if r["seconds"] == secs]
        for m in METHODS:
            rs = [r[m] for r in runs]
            sup = [r["supervised"]["test_accuracy"] for r in runs]
            own = f" (its classifier {fmt_pct(sup)})" if m == "supervised" else ""
            rows.append([f"{secs:g} s", m + own, len(seeds), f"{statistics.mean(r['steps'] for r in rs):.0f}",
                         f"{statistics.mean(r['im_s'] for r in rs):.0f}", fmt_pct([r["linear"] for r in rs]),
                         fmt_pct([r["linear_maps"] for r in rs]), fmt_pct([r["knn"] for r in rs]),
                         fmt_pct([r["linear"] / s for r, s in zip(rs, sup)]) + "%"])
    body = table(["budget", "method", "seeds", "steps", "im/s", "linear", "linear, conv maps", "k-NN",
                  "linear / supervised classifier"], rows)
    notes = ("MNIST-M, ConvNet (width 32, 128-d features), Adam 1e-3, each method's default batch size, single "
             "process, 1 thread. " + probe_note(max_train, max_val) + f" 'conv maps' probes the last conv block's {raw[0]['supervised']['maps_dim']} "
             "values. Cells with several seeds: mean ± standard error over the training seeds (the "
             "ratio is taken per seed, against that seed's supervised classifier). "
             "Runs may share the 2 cores with another suite, so im/s is approximate.")
    seeds_txt = "; ".join(f"{s:g} s: {', '.join(map(str, sd))}" for s, sd in plan)
    return section("Self-supervised vs supervised on MNIST-M against the CPU budget",
                   "python -m benchmarks.run studies.ssl_budget",
                   " / ".join(f"{s:g} s" for s, _ in plan) + " of training per run (CPU)", seeds_txt, body, notes,
                   measured=measured)
