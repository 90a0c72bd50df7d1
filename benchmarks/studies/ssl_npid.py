"""NPID under a short budget: why it ends below the untrained ConvNet, and what the budget changes.

NPID's positive for an image is that image's memory-bank row. The bank starts as random unit vectors
(the paper) and a row becomes an embedding only when its image comes round again, so under the ssl
suite's 30 s (well under one epoch) every positive is random. This suite measures, on MNIST with 3
training seeds: the paper's bank at 30 and 120 s, and ``bank_init=encoder`` (the bank filled with
the untrained encoder's embeddings inside the first step, so the fill counts in the 30 s), beside the
untrained encoder.
"""

from __future__ import annotations

import statistics

import torch

from ..common import fmt_pct, probe_note, save_json, section, table, train_and_probe, train_sizes

SEEDS = (0, 1, 2)
# (row label, overrides, seconds; 0: the untrained encoder)
ROWS = [
    ("untrained ConvNet", dict(lr=1e-12), 0),
    ("npid, random bank (paper), 30 s", {}, 30.0),
    ("npid, bank filled by the untrained encoder, 30 s (fill counted)", dict(bank_init="encoder"), 30.0),
    ("npid, random bank (paper), 120 s", {}, 120.0),
]


def run(quick: bool = False) -> str:
    torch.set_num_threads(1)
    seeds = SEEDS[:1] if quick else SEEDS
    scale = 1 / 15 if quick else 1.0
    max_train, max_val = (500, 200) if quick else (5000, 2000)
    raw: dict = {}
    for i, (label, kw, secs) in enumerate(ROWS):
        raw[label] = [train_and_probe("npid", "mnist", secs * scale if secs else 0.01, max_train, max_val,
                                      tag=f"-npid{i}" + (f"-seed{s}" if s else ""), seed=s, **kw) for s in seeds]
    save_json("ssl_npid", raw)
    return report(raw, quick)


def report(raw: dict, quick: bool = False, measured: dict | None = None) -> str:
    """The section from the study's results (``results/ssl_npid.json``): no training (it reads the size of
    MNIST's train split for the epochs)."""
    max_train, max_val = (500, 200) if quick else (5000, 2000)
    seeds = SEEDS[:len(raw[ROWS[0][0]])]
    n_train = train_sizes("mnist")[1]
    untrained = raw[ROWS[0][0]]
    rows = []
    for label, _, secs in ROWS:
        rs = raw[label]
        steps = statistics.mean(r["steps"] for r in rs)
        rows.append([label, f"{steps:.0f}" if secs else "-",
                     f"{steps * rs[0]['batch_size'] / n_train:.2f}" if secs else "-",
                     fmt_pct([r["linear"] for r in rs]), fmt_pct([r["knn"] for r in rs]),
                     fmt_pct([r["linear"] - u["linear"] for r, u in zip(rs, untrained)]),
                     fmt_pct([r["knn"] - u["knn"] for r, u in zip(rs, untrained)]), fmt_pct([r["knn_usps"] for r in rs])])
    body = table(["variant", "steps", "epochs", "MNIST linear", "MNIST k-NN", "linear gained over untrained",
                  "k-NN gained over untrained", "USPS k-NN (transfer)"], rows)
    notes = (f"NPID as in the paper (128-d, tau 0.07, K = 4096 bank negatives, bank momentum 0.5, NCE with Z fixed "
             f"at the first step), ConvNet width 32, batch 256, Adam 1e-3, `digits` views, single process, 1 "
             f"thread, the budget in wall time (`max_seconds`). Epochs: steps x 256 / {n_train} train images (10% "
             f"of train is held out for the probes). `bank_init=encoder` is our option, not the paper's: the fill "
             f"(the untrained encoder on every train image) runs inside the first step, so it takes part of the "
             f"30 s. " + probe_note(max_train, max_val, "USPS: the MNIST encoder, USPS train as bank")
             + " Cells: mean ± standard error over the training "
             f"seeds; gains per seed against that seed's untrained encoder. The paper trains for 200 epochs.")
    return section("NPID against the budget, and with a filled memory bank (MNIST)",
                   "python -m benchmarks.run studies.ssl_npid",
                   "30 / 120 s of training per run (CPU)" if not quick else "quick",
                   ", ".join(map(str, seeds)), body, notes, measured=measured)
