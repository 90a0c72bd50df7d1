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

from .common import line_plot, save_json, section, table
from .ssl import _one, _pm, probe_note

METHODS = ("simclr", "rotnet")
BITS = (0, 1, 2, 4, 8)
SEEDS = (0, 1, 2)


def run(quick: bool = False) -> str:
    torch.set_num_threads(1)
    secs, bits, seeds = (2.0, (0, 2), (0,)) if quick else (30.0, BITS, SEEDS)
    max_train, max_val = (500, 200) if quick else (5000, 2000)
    raw, rows = [], []
    for method in METHODS:
        for n in bits:
            rs, us = [], []
            for seed in seeds:
                tag = f"-randbit{n}" + (f"-seed{seed}" if seed else "")
                r = _one(method, "mnist", secs, max_train, max_val, tag=tag, seed=seed, randbit=n)
                # the same encoder untrained: the bit channels already perturb a random network's features
                u = _one(method, "mnist", 0.01, max_train, max_val, tag=tag + "-untrained", seed=seed, randbit=n,
                         lr=1e-12)
                rs.append(r), us.append(u)
                raw.append({"method": method, "bits": n, "seed": seed, **r, "untrained": u})
            rows.append([method, n, len(rs), f"{statistics.mean(r['steps'] for r in rs):.0f}",
                         _pm([r["linear"] for r in rs]), _pm([r["knn"] for r in rs]),
                         _pm([r["knn_usps"] for r in rs]), _pm([u["linear"] for u in us]),
                         _pm([r["linear"] - u["linear"] for r, u in zip(rs, us)])])
    save_json("ssl_randbit", raw)
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
             "sample sd over the training seeds. Published anchor (Chen, Luo & Li 2021, *Intriguing properties of "
             "contrastive losses*, Sec. 4, RandBit on CIFAR-10 and ImageNet with ResNets): a few shared bits cut "
             "linear accuracy sharply, and more bits cut it further; their numbers are in their figure, not quoted"
             " here.")
    return section("Feature suppression: SimCLR and RotNet with n shared random bits (RandBit)",
                   "PYTHONPATH=src:. python -m benchmarks.run ssl_randbit",
                   f"{secs:g} s of training per run (CPU)", ", ".join(map(str, seeds)), body, notes)


def _plot(raw: list[dict], secs: float) -> str:
    bits = sorted({r["bits"] for r in raw})
    series = []
    for method, fmt in (("simclr", "o"), ("rotnet", "s")):
        for label, style, get in (("", "-", lambda r: r["linear"]),
                                  (", untrained", "--", lambda r: r["untrained"]["linear"])):
            vals = [[100 * get(r) for r in raw if r["bits"] == b and r["method"] == method] for b in bits]
            series.append((f"{method}{label}", fmt + style, bits, [statistics.mean(v) for v in vals],
                           [statistics.pstdev(v) for v in vals]))
    line_plot("ssl_randbit", f"RandBit on MNIST, ConvNet, {secs:g} s CPU each", "n, random bits shared by all views",
              "MNIST linear probe accuracy (%)", series)
    return "benchmarks/results/ssl_randbit.png"
