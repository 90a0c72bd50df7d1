"""Feature suppression, measured: SimCLR and RotNet on MNIST with n RandBit channels (Chen et al. 2021).

Each image gets n constant input channels spelling a random n-bit integer that all of its views share
(``randbit=n``, ``data/randbit.py``). The bits identify an image among the batch without any digit
feature; the question is how much of the digit representation survives. SimCLR's objective can be met
with the bits; RotNet's cannot (constant channels do not tell a rotation). This is the controlled
version of what the ssl suite finds on MNIST-M, where the background patch plays the part of the bits.
"""

from __future__ import annotations

import statistics

import torch

from ..common import fmt_pct, line_plot, mean_se, probe_note, save_json, section, table, train_and_probe

METHODS = ("simclr", "rotnet")
BITS = (0, 1, 2, 4, 8)
SEEDS = (0, 1, 2)
SECONDS = 30.0


def run(quick: bool = False) -> str:
    torch.set_num_threads(1)
    secs, bits, seeds = (2.0, (0, 2), (0,)) if quick else (SECONDS, BITS, SEEDS)
    max_train, max_val = (500, 200) if quick else (5000, 2000)
    raw = []
    for method in METHODS:
        for n in bits:
            for seed in seeds:
                tag = f"-randbit{n}" + (f"-seed{seed}" if seed else "")
                r = train_and_probe(method, "mnist", secs, max_train, max_val, tag=tag, seed=seed, randbit=n)
                # the same encoder untrained: the bit channels already perturb a random network's features
                u = train_and_probe(method, "mnist", 0.01, max_train, max_val, tag=tag + "-untrained", seed=seed,
                                    randbit=n, lr=1e-12)
                raw.append({"method": method, "bits": n, "seed": seed, **r, "untrained": u})
    save_json("ssl_randbit", raw)
    return report(raw, quick)


def report(raw: list[dict], quick: bool = False, measured: dict | None = None) -> str:
    """The section (and its plot) from the study's results (``results/ssl_randbit.json``): no training."""
    secs = 2.0 if quick else SECONDS
    max_train, max_val = (500, 200) if quick else (5000, 2000)
    bits = sorted({r["bits"] for r in raw})
    seeds = sorted({r["seed"] for r in raw})
    rows = []
    for method in METHODS:
        for n in bits:
            cell = [r for r in raw if r["method"] == method and r["bits"] == n]
            rs, us = cell, [r["untrained"] for r in cell]
            rows.append([method, n, len(rs), f"{statistics.mean(r['steps'] for r in rs):.0f}",
                         fmt_pct([r["linear"] for r in rs]), fmt_pct([r["knn"] for r in rs]),
                         fmt_pct([r["knn_usps"] for r in rs]), fmt_pct([u["linear"] for u in us]),
                         fmt_pct([r["linear"] - u["linear"] for r, u in zip(rs, us)])])
    plot = _plot(raw, secs) if not quick else None
    body = table(["method", "RandBit bits n", "seeds", "steps", "MNIST linear", "MNIST k-NN", "USPS k-NN (transfer)",
                  "MNIST linear, untrained", "linear gained by training"], rows)
    if plot:
        body += f"\n\n![linear probe accuracy against the number of shared bits]({plot})"
    notes = (f"SimCLR (batch 256, tau 0.5) and RotNet (batch 256, 4 rotations each); ConvNet width 32, 128-d "
             f"features, Adam 1e-3, `digits` views, {secs:g} s"
             " of training per run, single process, 1 thread; n extra constant input channels carry a hash-derived"
             " n-bit integer that both views of an image share and that carries no label information "
             "(`data/randbit.py`); the probes see the same channels. 'untrained' is the same encoder and channels "
             "before training (lr 1e-12): a random network mixes the constant bit channels into every feature, "
             "which costs accuracy before any learning, so the effect of training is the last column. "
             + probe_note(max_train, max_val) + " Cells: mean ± "
             "standard error over the training seeds (the plot's error bars: one standard error). Published anchor "
             "(Chen, Luo & Li 2021, *Intriguing properties of "
             "contrastive losses*, Sec. 4, RandBit on CIFAR-10 and ImageNet with ResNets): a few shared bits cut "
             "linear accuracy sharply, and more bits cut it further; their numbers are in their figure, not quoted"
             " here.")
    return section("Feature suppression: SimCLR and RotNet with n shared random bits (RandBit)",
                   "python -m benchmarks.run studies.ssl_randbit",
                   f"{secs:g} s of training per run (CPU)", ", ".join(map(str, seeds)), body, notes, measured=measured)


def _plot(raw: list[dict], secs: float) -> str:
    bits = sorted({r["bits"] for r in raw})
    series = []
    for method, fmt in (("simclr", "o"), ("rotnet", "s")):
        for label, style, get in (("", "-", lambda r: r["linear"]),
                                  (", untrained", "--", lambda r: r["untrained"]["linear"])):
            vals = [[100 * get(r) for r in raw if r["bits"] == b and r["method"] == method] for b in bits]
            series.append((f"{method}{label}", fmt + style, bits, [mean_se(v)[0] for v in vals],
                           [mean_se(v)[1] for v in vals]))
    line_plot("ssl_randbit", f"RandBit on MNIST, ConvNet, {secs:g} s CPU each", "n, random bits shared by all views",
              "MNIST linear probe accuracy (%)", series)
    return "benchmarks/results/ssl_randbit.png"
