"""MNIST-M: which pretext transformations and settings get past the background, under the ssl budget?

The ssl suite finds the best self-supervised linear probe on MNIST-M far below the supervised network
(docs/ssl.md: the natural-image background identifies an image better than its digit). This suite
measures, with 3 training seeds each and the ssl suite's budget and probes, the variants that
docs/ssl.md discusses:

- RotNet's transformation set (``angles``, ``mirror``): the paper's 4 rotations, its 2- and 8-way
  alternatives, mirror prediction (a task a natural background should not solve, since photographs are
  left-right symmetric in distribution while most digits are not) and the 8 symmetries of the square;
- RotNet with batch 32 (4x more steps in the budget), and mirror prediction with 4x the budget;
- SimCLR at its default temperature and at 0.2.

The pretext accuracy (mean over the last 10 logged steps, training batches) tells whether the task was
learnt at all; the linear probes tell whether learning it helped the digit.
"""

from __future__ import annotations

import statistics

import torch

from ..common import fmt_pct, probe_note, probe_run_dir, save_json, section, table, train_and_probe

SECONDS = 30.0
SEEDS = (0, 1, 2)
VIEWS = dict(augment="digits_strong")          # the ssl suite's MNIST-M views
# (row label, method, overrides, budget multiplier)
ROWS = [
    ("supervised", "supervised", {}, 1),
    ("random init (untrained ConvNet)", "rotnet", dict(lr=1e-12), 0),
    ("rotnet, 4 rotations (paper)", "rotnet", VIEWS, 1),
    ("rotnet, 2 rotations 0/180", "rotnet", dict(angles=[0, 180], **VIEWS), 1),
    ("rotnet, 2 rotations 90/270", "rotnet", dict(angles=[90, 270], **VIEWS), 1),
    ("rotnet, 8 rotations (45 degrees)", "rotnet", dict(angles=list(range(0, 360, 45)), **VIEWS), 1),
    ("rotnet, mirror only", "rotnet", dict(angles=[0], mirror=True, **VIEWS), 1),
    ("rotnet, 4 rotations x mirror (8 symmetries)", "rotnet", dict(mirror=True, **VIEWS), 1),
    ("rotnet, 4 rotations, batch 32", "rotnet", dict(batch_size=32, **VIEWS), 1),
    ("rotnet, mirror only, 4x budget", "rotnet", dict(angles=[0], mirror=True, **VIEWS), 4),
    ("simclr, tau 0.5 (default)", "simclr", VIEWS, 1),
    ("simclr, tau 0.2", "simclr", dict(temperature=0.2, **VIEWS), 1),
]


def _pretext_accuracy(run_dir, key: str, last: int = 10) -> float | None:
    from latentlab.engine.logging import read_metrics
    vals = [r[key] for r in read_metrics(run_dir) if key in r]
    return statistics.mean(vals[-last:]) if vals else None


def run(quick: bool = False) -> str:
    torch.set_num_threads(1)
    secs, seeds = (2.0, SEEDS[:1]) if quick else (SECONDS, SEEDS)
    max_train, max_val = (500, 200) if quick else (5000, 2000)
    rows_in = ROWS[:3] + ROWS[6:7] if quick else ROWS
    raw: dict = {}
    for i, (label, method, kw, mult) in enumerate(rows_in):
        raw[label] = []
        for seed in seeds:
            tag = f"-mnistm{i}" + (f"-seed{seed}" if seed else "")
            r = train_and_probe(method, "mnist_m", secs * mult if mult else 0.01, max_train, max_val, tag=tag, seed=seed,
                     log_every=1, **kw)
            r["pretext_acc"] = _pretext_accuracy(probe_run_dir(method, "mnist_m", tag), "rot_acc") \
                if method == "rotnet" and mult else None
            raw[label].append(r)
    save_json("ssl_mnistm", raw)
    return report(raw, quick)


def report(raw: dict, quick: bool = False, measured: dict | None = None) -> str:
    """The section from the study's results (``results/ssl_mnistm.json``): no training."""
    secs = 2.0 if quick else SECONDS
    max_train, max_val = (500, 200) if quick else (5000, 2000)
    rows_in = [r for r in ROWS if r[0] in raw]
    seeds = SEEDS[:len(raw["supervised"])]
    sup = [r["test_accuracy"] for r in raw["supervised"]]
    untrained = raw["random init (untrained ConvNet)"]
    rows = []
    for label, method, kw, mult in rows_in:
        rs = raw[label]
        pre = [r["pretext_acc"] for r in rs if r["pretext_acc"] is not None]
        budget = f"{secs * mult:g} s" if mult else "-"
        name = f"{label} (its classifier: {fmt_pct(sup)})" if method == "supervised" else label
        rows.append([name, budget, f"{statistics.mean(r['steps'] for r in rs):.0f}",
                     fmt_pct(pre) if pre else "-", fmt_pct([r["linear"] for r in rs]),
                     fmt_pct([r["linear"] - u["linear"] for r, u in zip(rs, untrained)]),
                     fmt_pct([r["linear"] / s for r, s in zip(rs, sup)]) + "%", fmt_pct([r["knn"] for r in rs]),
                     fmt_pct([r["linear_maps"] for r in rs])])
    body = table(["variant", "budget", "steps", "pretext accuracy (train, last 10 steps)", "linear",
                  "linear gained over untrained", "linear / supervised classifier", "k-NN",
                  "linear, conv maps"], rows)
    notes = (f"MNIST-M, ConvNet (width 32, 128-d features), Adam 1e-3, batch 256 unless stated (RotNet: every "
             f"image in all its transformed copies; SimCLR: 2 views), `augment=digits_strong` for the "
             f"self-supervised rows, single process, 1 thread, the budget in wall time (`max_seconds`). "
             + probe_note(max_train, max_val, "'conv maps' probes the last conv block's "
                          f"{raw['supervised'][0]['maps_dim']} values") + " Cells: mean ± standard error over the training seeds; the "
             f"gain and the ratio are taken per seed (against that seed's untrained encoder and supervised "
             f"classifier). The pretext accuracy is on training batches (chance: 1 / number of transformations). "
             f"The goal of the ssl suite (>= 95% of the supervised classifier) would need about "
             f"{95 * statistics.mean(sup):.1f}% linear here. Published anchor: Gidaris et al. 2018 compare 2, 4 and "
             f"8 recognised rotations on CIFAR-10 and find 4 best for the downstream classifier (figures not quoted "
             f"here).")
    return section("MNIST-M: RotNet transformation sets, mirror prediction and SimCLR temperature",
                   "python -m benchmarks.run studies.ssl_mnistm",
                   f"{secs:g} s of training per run (CPU), one row 4x", ", ".join(map(str, seeds)), body, notes,
                   measured=measured)
