"""MNIST-M: does a wider representation let self-supervision catch up with the supervised network?

A linear probe on the ConvNet's 128-d features of an untrained encoder gives 46.5% on MNIST-M, and on its
4096 conv-map values 76.6% (``ssl_mnistm``): the probe's accuracy depends on the representation's width
as much as on training. docs/ssl.md quoted ad hoc single-seed runs with 512-d features (SimCLR 60.7%,
RotNet 65.9%, untrained 63.6%). This suite measures them with 3 training seeds, at the ssl suite's 30 s
and probes: for 128-d and 512-d features, the supervised classifier, the untrained encoder, RotNet with
batch 32 (the most steps in the budget) and SimCLR, each against the untrained encoder and the
supervised classifier of the same width.
"""

from __future__ import annotations

import statistics

import torch

from ..common import fmt_pct, probe_note, save_json, section, table, train_and_probe

SECONDS = 30.0
SEEDS = (0, 1, 2)
DIMS = (128, 512)
VIEWS = dict(augment="digits_strong")          # the ssl suite's MNIST-M views
# (row label, method, overrides, trained)
ROWS = [
    ("supervised", "supervised", {}, True),
    ("untrained", "rotnet", dict(lr=1e-12), False),
    ("rotnet, 4 rotations, batch 32", "rotnet", dict(batch_size=32, **VIEWS), True),
    ("simclr", "simclr", VIEWS, True),
]


def run(quick: bool = False) -> str:
    torch.set_num_threads(1)
    secs, seeds, dims = (2.0, SEEDS[:1], DIMS) if quick else (SECONDS, SEEDS, DIMS)
    max_train, max_val = (500, 200) if quick else (5000, 2000)
    raw: dict = {}
    for d in dims:
        for i, (label, method, kw, trained) in enumerate(ROWS):
            raw[f"{label} {d}"] = [
                train_and_probe(method, "mnist_m", secs if trained else 0.01, max_train, max_val,
                                tag=f"-dim{d}-{i}" + (f"-seed{s}" if s else ""), seed=s, num_features=d, **kw)
                for s in seeds]
    save_json("ssl_dim", raw)
    return report(raw, quick)


def report(raw: dict, quick: bool = False, measured: dict | None = None) -> str:
    """The section from the study's results (``results/ssl_dim.json``): no training."""
    max_train, max_val = (500, 200) if quick else (5000, 2000)
    secs = 2.0 if quick else SECONDS
    dims = [d for d in DIMS if f"{ROWS[0][0]} {d}" in raw]
    seeds = SEEDS[:len(raw[f"{ROWS[0][0]} {dims[0]}"])]
    rows = []
    for d in dims:
        sup = [r["test_accuracy"] for r in raw[f"supervised {d}"]]
        untrained = raw[f"untrained {d}"]
        for label, method, _, trained in ROWS:
            rs = raw[f"{label} {d}"]
            name = f"{label} (its classifier: {fmt_pct(sup)})" if method == "supervised" else label
            rows.append([name, str(d), f"{statistics.mean(r['steps'] for r in rs):.0f}" if trained else "-",
                         fmt_pct([r["linear"] for r in rs]),
                         fmt_pct([r["linear"] - u["linear"] for r, u in zip(rs, untrained)]),
                         fmt_pct([r["linear"] / s for r, s in zip(rs, sup)]) + "%", fmt_pct([r["knn"] for r in rs])])
    body = table(["encoder", "features", "steps", "linear", "linear gained over untrained (same width)",
                  "linear / supervised classifier (same width)", "k-NN"], rows)
    notes = (f"MNIST-M, ConvNet (width 32; `num_features` 128 or 512 after its fc layer), Adam 1e-3, batch 256 "
             f"unless stated, `augment=digits_strong` for the self-supervised rows, single process, 1 thread, "
             f"{secs:g} s of wall time per trained run. " + probe_note(max_train, max_val) + " Cells: mean ± standard "
             f"error over the training seeds; the gain and the ratio are taken per seed against the untrained encoder "
             f"and the supervised classifier of the same width and seed. The ssl suite's goal is >= 95% of the "
             f"supervised classifier.")
    return section("MNIST-M: representation width (128-d and 512-d features)",
                   "python -m benchmarks.run studies.ssl_dim",
                   f"{secs:g} s of training per run (CPU)", ", ".join(map(str, seeds)), body, notes, measured=measured)
