"""Self-supervised methods under an equal CPU budget: linear probe and k-NN, beside the supervised network.

Every method trains its default ConvNet for the same wall time on MNIST and on MNIST-M, then its frozen
features are evaluated by the two generic protocols (``latentlab eval RUN --protocol linear|knn``);
k-NN is also measured on USPS with the MNIST-trained encoder (USPS resized to 28x28: transfer).
The K experiment (accuracy against MoCo's queue size) is its own suite, ``benchmarks/ssl_k.py``.
"""

from __future__ import annotations

import statistics

import torch

from .common import fmt_pct, load_json, save_json, section, table, train_and_probe

METHODS = ["simclr", "moco", "byol", "barlow_twins", "rotnet", "npid", "dino", "s4l", "jigsaw", "context",
           "deepcluster", "pirl", "temporal_order"]
# Short-budget settings (stated in the notes): MoCo's queue no larger than the data, faster EMA teachers,
# DeepCluster reassigning every 25 steps on 5000 images.
OVERRIDES = {"moco": dict(queue_size=4096, momentum=0.99), "byol": dict(base_momentum=0.99),
             "dino": dict(base_momentum=0.99, n_local=2), "deepcluster": dict(reassign_every=25, cluster_samples=5000)}
# MNIST-M: the background (a natural-image patch, its colour inverted under the digit) identifies an image
# far better than its digit, so views must not share its colour: every method uses digits_strong there.
DATASET_OVERRIDES = {"mnist_m": dict(augment="digits_strong")}
SEMI_SUPERVISED = {"s4l"}  # uses labels: shown, but not a candidate for the self-supervised goal
PUBLISHED = ("Published anchors (DINO paper, Table 2, ImageNet, ResNet-50, linear / k-NN top-1): "
             "supervised 79.3 / 79.3, SimCLR 69.1 / 60.7, MoCo v2 71.1 / 61.9, BYOL 74.4 / 64.8, "
             "Barlow Twins 73.2 / 66.0, DINO 75.3 / 67.5 (hundreds of GPU-epochs; not comparable in scale).")
SEEDS = (0, 1, 2)


def _cells(seed: int, seconds: float, max_train: int, max_val: int, methods) -> dict:
    """Every (dataset, method) cell for one training seed: {dataset: {method: row}}."""
    tag = f"-seed{seed}" if seed else ""
    out: dict = {}
    for ds in ("mnist", "mnist_m"):
        out[ds] = {"supervised": train_and_probe("supervised", ds, seconds, max_train, max_val, tag=tag, seed=seed)}
        out[ds]["random init"] = train_and_probe("rotnet", ds, 0.01, max_train, max_val, tag="-random-init" + tag,
                                                 lr=1e-12, seed=seed)
        for m in methods:
            out[ds][m] = train_and_probe(m, ds, seconds, max_train, max_val, tag=tag, seed=seed,
                                         **{**OVERRIDES.get(m, {}), **DATASET_OVERRIDES.get(ds, {})})
    return out


def _mean(rows: list[dict], key: str) -> float:
    return statistics.mean(r[key] for r in rows)


def run(quick: bool = False) -> str:
    torch.set_num_threads(1)
    seconds = 2.0 if quick else 30.0
    max_train, max_val = (500, 200) if quick else (5000, 2000)
    methods = METHODS[:3] if quick else METHODS
    seeds = SEEDS[:1] if quick else SEEDS
    per_seed = {seed: _cells(seed, seconds, max_train, max_val, methods) for seed in seeds}
    save_json("ssl", {"results": per_seed})
    return report({"results": per_seed}, quick)


def report(raw: dict, quick: bool = False, measured: dict | None = None) -> str:
    """The section from the suite's results (``results/ssl.json``): no training."""
    seconds = 2.0 if quick else 30.0
    max_train, max_val = (500, 200) if quick else (5000, 2000)
    per_seed = {int(k): v for k, v in raw["results"].items()}
    seeds = sorted(per_seed)
    methods = [m for m in METHODS if m in per_seed[seeds[0]]["mnist"]]
    cell = lambda ds, m: [per_seed[sd][ds][m] for sd in seeds]                      # noqa: E731
    vals = lambda ds, m, key: [r[key] for r in cell(ds, m)]                          # noqa: E731
    # an MNIST-M value relative to the supervised network's of the same seed (default: its classifier)
    rel = lambda m, key="linear", sup_key="test_accuracy": [                          # noqa: E731
        r[key] / s[sup_key] for r, s in zip(cell("mnist_m", m), cell("mnist_m", "supervised"))]
    header = ["method", "arch", "params", "im/s (MNIST)", "MNIST linear", "MNIST k-NN", "USPS k-NN (transfer)",
              "MNIST-M im/s", "MNIST-M linear", "MNIST-M k-NN", "MNIST-M linear / supervised",
              "MNIST-M linear, conv maps"]
    rows = []
    for m in ["supervised", "random init", *methods]:
        a = cell("mnist", m)[0]
        name = (f"{m} (its classifier: {fmt_pct(vals('mnist', m, 'test_accuracy'))} / "
                f"{fmt_pct(vals('mnist_m', m, 'test_accuracy'))})") if m == "supervised" else m
        rows.append([name, a["arch"], a["params"], f"{_mean(cell('mnist', m), 'im_s'):.0f}",
                     fmt_pct(vals("mnist", m, "linear")), fmt_pct(vals("mnist", m, "knn")), fmt_pct(vals("mnist", m, "knn_usps")),
                     f"{_mean(cell('mnist_m', m), 'im_s'):.0f}", fmt_pct(vals("mnist_m", m, "linear")),
                     fmt_pct(vals("mnist_m", m, "knn")), fmt_pct(rel(m)) + "%", fmt_pct(vals("mnist_m", m, "linear_maps"))])
    ssl_methods = [m for m in methods if m not in SEMI_SUPERVISED]
    best = max(ssl_methods, key=lambda m: statistics.mean(rel(m)))
    ratio = statistics.mean(rel(best))
    maps_rel = lambda m: rel(m, "linear_maps", "linear_maps")                        # noqa: E731
    best_maps = max(ssl_methods, key=lambda m: statistics.mean(maps_rel(m)))
    goal = (f"Goal (best self-supervised linear accuracy >= 95% of the supervised network's on MNIST-M; s4l, "
            f"which trains on labels, is not a candidate): best is **{best}** at {fmt_pct(vals('mnist_m', best, 'linear'))}% "
            f"vs supervised {fmt_pct(vals('mnist_m', 'supervised', 'test_accuracy'))}% = {fmt_pct(rel(best))}% -> "
            f"**{'met' if ratio >= 0.95 else 'NOT met'}** under this budget. Probing the last conv maps of both "
            f"instead: best **{best_maps}** {fmt_pct(vals('mnist_m', best_maps, 'linear_maps'))}% vs supervised "
            f"{fmt_pct(vals('mnist_m', 'supervised', 'linear_maps'))}% = {fmt_pct(maps_rel(best_maps))}% (random init: "
            f"{fmt_pct(vals('mnist_m', 'random init', 'linear_maps'))}%).")
    seeds_txt = f"{', '.join(map(str, seeds))} (training seeds; ratios taken per seed)"
    body = table(header, rows) + "\n\n" + goal + "\n\nThe K experiment (accuracy against MoCo's queue size) is the ssl_k suite.\n"
    if raw.get("K"):     # an earlier round's K experiment, kept in ssl.json; superseded by the ssl_k suite
        body += ("\nThe earlier K experiment of this suite (MoCo on MNIST, 15 s of training each, momentum 0.99, seed 0; "
                 "superseded by the ssl_k suite, whose queues are refilled with real keys many times):\n\n"
                 + table(["K (queue size)", "steps", "linear", "k-NN"],
                         [[r["K"], r["steps"], f"{100 * r['linear']:.1f}", f"{100 * r['knn']:.1f}"] for r in raw["K"]])
                 + "\n\n![accuracy against K, the earlier experiment](benchmarks/results/ssl_K.png)\n")
    notes = (f"Protocol: each method trains the default ConvNet (width 32, 128-d features, its own default batch "
             f"size, Adam 1e-3) for {seconds:g} s of wall time (`max_seconds`), single process, 1 thread, then "
             f"frozen `forward_features` (eval mode, no augmentation) are evaluated. Linear: logistic regression "
             f"on standardised features, L-BFGS 100 iterations, weight decay picked on a validation split "
             f"held out from train ({max_val} images), last iterate reported on the full test set. k-NN: k = 20, "
             f"T = 0.07, cosine. 'conv maps': the same linear probe on the last conv block's maps "
             f"(`--layer maps`, {per_seed[seeds[0]]['mnist_m']['supervised']['maps_dim']} values on MNIST-M) instead of the "
             f"128-d `forward_features`. Probe/bank train features: the first {max_train} images of the train split "
             f"(minus validation), to keep the suite within budget. USPS k-NN: the MNIST-trained encoder on "
             f"USPS resized to 28x28 (USPS train as bank, USPS test). 'supervised' is `latentlab train "
             f"supervised` (same ConvNet, batch 256, same budget); its own classifier's test accuracy is in "
             f"brackets (MNIST / MNIST-M), its linear/k-NN columns probe its penultimate features. 'random init' "
             f"is the untrained ConvNet (1 step at lr 1e-12) - the floor every method must beat. im/s counts "
             f"source images per second (views and tiles not counted). Short-budget overrides: {OVERRIDES}; on MNIST-M every self-supervised method "
             f"uses `augment=digits_strong` (hue, channel order, polarity and grayscale randomised, so two views do "
             f"not share the background's colour) "
             f"(momentum schedules run over `steps` = 1e6, i.e. stay at their base). The machine is shared by other jobs, so im/s is "
             f"approximate. {PUBLISHED}")
    return section("Self-supervised representation learning (linear probe and k-NN)",
                   "PYTHONPATH=src:. nice -n 10 python -m benchmarks.run ssl",
                   f"{seconds:g} s of training per method per dataset (CPU)", seeds_txt,
                   body, notes, measured=measured)


def headline() -> tuple[str, str] | None:
    """(the best self-supervised MNIST-M linear probe against the supervised classifier, the DINO table's
    best against supervised), from results/ssl.json."""
    d = load_json("ssl")
    if not d:
        return None
    per_seed = list(d["results"].values())
    methods = [m for m in METHODS if m in per_seed[0]["mnist_m"] and m not in SEMI_SUPERVISED]
    rel = {m: [s["mnist_m"][m]["linear"] / s["mnist_m"]["supervised"]["test_accuracy"] for s in per_seed]
           for m in methods}
    best = max(methods, key=lambda m: statistics.mean(rel[m]))
    return (f"MNIST-M, 30 s: best {best}, linear {fmt_pct([s['mnist_m'][best]['linear'] for s in per_seed])}% = "
            f"{fmt_pct(rel[best])}% of the supervised classifier ({len(per_seed)} seeds)",
            "DINO paper, Table 2 (ImageNet, ResNet-50): DINO 75.3 linear = 95% of supervised 79.3")
