"""The CIFAR-stem ResNet-18 as encoder: supervised vs SimCLR on MNIST under an equal CPU budget.

The ``ssl`` suite compares every method on the small ConvNet; this suite runs the issue's second encoder
(``net=resnet18``, torchvision parameter names, 11M parameters) through the same training and probes, to
show it works end to end and what a few CPU minutes buy with it (far from the papers' GPU-days).
"""

from __future__ import annotations

import torch

from ..common import probe_note, save_json, section, table, train_and_probe

METHODS = {"supervised": {}, "simclr": {}}


def run(quick: bool = False) -> str:
    torch.set_num_threads(1)
    secs = 2.0 if quick else 300.0
    max_train, max_val = (300, 100) if quick else (5000, 2000)
    kw = dict(net="resnet18", width=64, batch_size=64)
    res = {m: train_and_probe(m, "mnist", secs, max_train, max_val, tag="-resnet18", **kw, **extra)
           for m, extra in METHODS.items()}
    # the floor: the untrained ResNet-18 (1 step at lr 1e-12), probed the same way
    res["random init"] = train_and_probe("simclr", "mnist", 0.01, max_train, max_val, tag="-resnet18-random-init", lr=1e-12, **kw)
    save_json("ssl_resnet", res)
    sup = res["supervised"]["test_accuracy"]
    rows = []
    for m, r in res.items():
        own = f" (its classifier {100 * sup:.1f})" if m == "supervised" else ""
        rows.append([m + own, r["arch"], r["params"], r["steps"], f"{r['im_s']:.0f}", f"{100 * r['linear']:.1f}",
                     f"{100 * r['knn']:.1f}", f"{100 * r['knn_usps']:.1f}", f"{100 * r['linear'] / sup:.1f}%"])
    body = table(["method", "arch", "params", "steps", "im/s", "MNIST linear", "MNIST k-NN", "USPS k-NN (transfer)",
                  "linear / supervised classifier"], rows)
    notes = (f"`net=resnet18` (CIFAR stem: 3x3 conv, no max-pool; width 64; 512-d features), batch 64, Adam 1e-3, "
             f"{secs:g} s of training each, single process, 1 thread; SimCLR with its defaults (`digits` views, "
             "tau 0.5, 2048-wide projector); 'random init' is the untrained ResNet-18. " + probe_note(max_train, max_val, "USPS k-NN with the MNIST-trained encoder") + " A CPU core trains "
             "this network at tens of images per second, so these runs see a fraction of one epoch.")
    return section("ResNet-18 encoder: supervised vs SimCLR (MNIST)",
                   "python -m benchmarks.run studies.ssl_resnet",
                   f"{secs:g} s of training per run (CPU)", "0", body, notes)
