"""Does the MNIST-M gap between self-supervised and supervised features close with a longer CPU budget?

The two strongest self-supervised candidates of the ``ssl`` suite on MNIST-M (SimCLR and RotNet, both with
``augment=digits_strong``) and the supervised ConvNet train for increasing, equal wall-time budgets; each
run is probed like the ``ssl`` suite (linear on ``forward_features`` and on the conv maps, k-NN).
"""

from __future__ import annotations

import torch

from .common import save_json, section, table
from .ssl import _one

METHODS = {"supervised": {}, "simclr": dict(augment="digits_strong"), "rotnet": dict(augment="digits_strong")}


def run(quick: bool = False) -> str:
    torch.set_num_threads(1)
    budgets = [2.0] if quick else [60.0, 240.0]
    max_train, max_val = (500, 200) if quick else (5000, 2000)
    rows, raw = [], []
    for secs in budgets:
        res = {m: _one(m, "mnist_m", secs, max_train, max_val, tag=f"-budget{secs:g}", **kw)
               for m, kw in METHODS.items()}
        sup = res["supervised"]["test_accuracy"]
        raw.append({"seconds": secs, **res})
        for m, r in res.items():
            own = f" (its classifier {100 * sup:.1f})" if m == "supervised" else ""
            rows.append([f"{secs:g} s", m + own, r["steps"], f"{r['im_s']:.0f}", f"{100 * r['linear']:.1f}",
                         f"{100 * r['linear_maps']:.1f}", f"{100 * r['knn']:.1f}",
                         f"{100 * r['linear'] / sup:.1f}%"])
    save_json("ssl_budget", raw)
    body = table(["budget", "method", "steps", "im/s", "linear", "linear, conv maps", "k-NN",
                  "linear / supervised classifier"], rows)
    notes = ("MNIST-M, ConvNet (width 32, 128-d features), Adam 1e-3, each method's default batch size, single "
             "process, 1 thread; the ssl suite's probes (linear on standardised features with weight decay chosen "
             f"on {max_val} validation images, last iterate on the full test set; k-NN k = 20, T = 0.07; "
             f"{max_train} train images). 'conv maps' probes the last conv block's {raw[0]['supervised']['maps_dim']} "
             "values. One seed per cell. "
             "Runs may share the 2 cores with another suite, so im/s is approximate.")
    return section("Self-supervised vs supervised on MNIST-M against the CPU budget",
                   "PYTHONPATH=src:. python -m benchmarks.run ssl_budget",
                   " / ".join(f"{b:g} s" for b in budgets) + " of training per run (CPU)", "0", body, notes)
