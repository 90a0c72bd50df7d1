"""Self-supervised methods under an equal CPU budget: linear probe and k-NN, beside the supervised network.

Every method trains its default ConvNet for the same wall time on MNIST and on MNIST-M, then its frozen
features are evaluated by the two generic protocols (``latentlab eval RUN --protocol linear|knn``);
k-NN is also measured on USPS with the MNIST-trained encoder (USPS resized to 28x28: transfer).
The K experiment (accuracy against MoCo's queue size) is its own suite, ``benchmarks/ssl_k.py``.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch

from .common import OUT, data_dir, save_json, section, table, train_run

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


def _params(module) -> str:
    from latentlab.methods.base import unwrap
    return f"{sum(p.numel() for p in unwrap(module).parameters()) / 1e6:.2f}M"


def _arch(m) -> str:
    from latentlab.methods.base import unwrap
    return f"{type(unwrap(m.encoder())).__name__}-w{m.cfg.width}"


def _evaluate(run_dir: Path, max_train: int, max_val: int, usps: bool, maps: bool = False,
              weight_decays=None, with_knn: bool = True, drop_features: bool = True) -> dict:
    """The probes of a run (``weight_decays``: the linear probe's grid, default its own). The feature files
    they cache are deleted afterwards unless ``drop_features`` is false (a caller probing again drops them)."""
    from latentlab.engine import load_run
    from latentlab.eval.representation import PROBE_WEIGHT_DECAYS, knn, linear
    m = load_run(run_dir)
    before = set(run_dir.glob("*.pt"))
    wds = PROBE_WEIGHT_DECAYS if weight_decays is None else weight_decays
    r = linear(m, max_train=max_train, max_val=max_val, weight_decays=wds)
    out = {"linear": r.metrics["linear_test_accuracy"], "linear_val": r.metrics["linear_val_accuracy"],
           "wd": r.protocol["weight_decay"],
           "params": _params(m.encoder()), "arch": _arch(m)}
    if with_knn:
        out["knn"] = knn(m, max_train=max_train, max_val=max_val).metrics["knn_test_accuracy"]
    if maps:
        r = linear(m, max_train=max_train, max_val=max_val, layer="maps", weight_decays=wds)
        out["linear_maps"], out["maps_dim"] = r.metrics["linear_test_accuracy"], r.protocol["feature_dim"]
        out["wd_maps"] = r.protocol["weight_decay"]
    if usps:
        out["knn_usps"] = knn(m, dataset="usps", max_train=max_train, max_val=max_val).metrics["knn_test_accuracy"]
    if m.name == "supervised":
        out["test_accuracy"] = m.evaluate().metrics["test_accuracy"]
    if drop_features:
        _drop_feature_caches(run_dir, before)
    return out


def _drop_feature_caches(run_dir: Path, keep: set) -> None:
    """Delete the feature files the probes cached in ``run_dir`` (all but ``keep``). The suites keep their
    probe results in JSON; the full split's conv maps alone are 0.8 GB a run, and 270 runs filled the disk."""
    for f in set(run_dir.glob("*.pt")) - keep:
        f.unlink()


def _one(method: str, dataset: str, seconds: float, max_train: int, max_val: int, tag: str = "", **kw) -> dict:
    kw = {"steps": 1_000_000, "batch_size": 256, **kw} if method == "supervised" else {"steps": 1_000_000, **kw}
    run_dir = OUT / "ssl" / f"{method}-{dataset}{tag}"  # tag: K-experiment / random-init runs get their own dir
    t0 = time.perf_counter()
    opts = dict(eval_at_end=False, image_every=0, ckpt_every=0, log_every=50,
                **({} if method == "supervised" else {"knn_every": 0}))
    res = train_run(method, run_dir, dataset=dataset, max_seconds=seconds, **{**opts, **kw})
    from latentlab.engine.run import load_run_config
    bs = load_run_config(run_dir)[1].batch_size
    row = {"steps": res.steps, "seconds": res.seconds, "im_s": res.steps * bs / res.seconds, "batch_size": bs}
    row.update(_evaluate(run_dir, max_train, max_val, usps=dataset == "mnist", maps=dataset == "mnist_m"))
    row["wall"] = time.perf_counter() - t0
    print(f"  {method:<15} {dataset:<8} {row['steps']:>5} steps {row['im_s']:7.0f} im/s  linear {row['linear']:.4f}"
          f"  knn {row['knn']:.4f}  ({row['wall']:.0f}s)", flush=True)
    return row


SEEDS = (0, 1, 2)


def _cells(seed: int, seconds: float, max_train: int, max_val: int, methods) -> dict:
    """Every (dataset, method) cell for one training seed: {dataset: {method: row}}."""
    tag = f"-seed{seed}" if seed else ""
    out: dict = {}
    for ds in ("mnist", "mnist_m"):
        out[ds] = {"supervised": _one("supervised", ds, seconds, max_train, max_val, tag=tag, seed=seed)}
        out[ds]["random init"] = _one("rotnet", ds, 0.01, max_train, max_val, tag="-random-init" + tag, lr=1e-12,
                                      seed=seed)
        for m in methods:
            out[ds][m] = _one(m, ds, seconds, max_train, max_val, tag=tag, seed=seed,
                              **{**OVERRIDES.get(m, {}), **DATASET_OVERRIDES.get(ds, {})})
    return out


def _mean(rows: list[dict], key: str) -> float:
    return statistics.mean(r[key] for r in rows)


def train_sizes(dataset: str) -> tuple[int, int]:
    """(images in the train split, images a run trains on: train minus the default 10% validation split)."""
    from latentlab.data import load_dataset, split_train_val
    n = len(load_dataset(dataset, "train", data_dir()))
    return n, len(split_train_val(n, 0.1, 0)[0])


def probe_note(max_train: int, max_val: int, extra: str = "") -> str:
    """The probe protocol that the ssl suites share, as a sentence for their notes."""
    return (f"Probes as in the ssl suite (linear on standardised features, weight decay chosen on {max_val} "
            f"validation images held out from train, last iterate on the full test set; k-NN k = 20, T = 0.07; "
            f"{max_train} train images{'; ' + extra if extra else ''}).")


def _pm(values: list[float]) -> str:
    """Percent, mean ± sample sd over seeds (one value: as is)."""
    if len(values) == 1:
        return f"{100 * values[0]:.1f}"
    return f"{100 * statistics.mean(values):.1f} ± {100 * statistics.stdev(values):.1f}"


def run(quick: bool = False) -> str:
    torch.set_num_threads(1)
    seconds = 2.0 if quick else 30.0
    max_train, max_val = (500, 200) if quick else (5000, 2000)
    methods = METHODS[:3] if quick else METHODS
    seeds = SEEDS[:1] if quick else SEEDS
    per_seed = {seed: _cells(seed, seconds, max_train, max_val, methods) for seed in seeds}
    save_json("ssl", {"results": per_seed})

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
        name = (f"{m} (its classifier: {_pm(vals('mnist', m, 'test_accuracy'))} / "
                f"{_pm(vals('mnist_m', m, 'test_accuracy'))})") if m == "supervised" else m
        rows.append([name, a["arch"], a["params"], f"{_mean(cell('mnist', m), 'im_s'):.0f}",
                     _pm(vals("mnist", m, "linear")), _pm(vals("mnist", m, "knn")), _pm(vals("mnist", m, "knn_usps")),
                     f"{_mean(cell('mnist_m', m), 'im_s'):.0f}", _pm(vals("mnist_m", m, "linear")),
                     _pm(vals("mnist_m", m, "knn")), _pm(rel(m)) + "%", _pm(vals("mnist_m", m, "linear_maps"))])
    ssl_methods = [m for m in methods if m not in SEMI_SUPERVISED]
    best = max(ssl_methods, key=lambda m: statistics.mean(rel(m)))
    ratio = statistics.mean(rel(best))
    maps_rel = lambda m: rel(m, "linear_maps", "linear_maps")                        # noqa: E731
    best_maps = max(ssl_methods, key=lambda m: statistics.mean(maps_rel(m)))
    goal = (f"Goal (best self-supervised linear accuracy >= 95% of the supervised network's on MNIST-M; s4l, "
            f"which trains on labels, is not a candidate): best is **{best}** at {_pm(vals('mnist_m', best, 'linear'))}% "
            f"vs supervised {_pm(vals('mnist_m', 'supervised', 'test_accuracy'))}% = {_pm(rel(best))}% -> "
            f"**{'met' if ratio >= 0.95 else 'NOT met'}** under this budget. Probing the last conv maps of both "
            f"instead: best **{best_maps}** {_pm(vals('mnist_m', best_maps, 'linear_maps'))}% vs supervised "
            f"{_pm(vals('mnist_m', 'supervised', 'linear_maps'))}% = {_pm(maps_rel(best_maps))}% (random init: "
            f"{_pm(vals('mnist_m', 'random init', 'linear_maps'))}%).")
    seeds_txt = (f"{', '.join(map(str, seeds))} (training seeds; cells give mean ± sample sd over them, ratios taken "
                 "per seed)")
    body = table(header, rows) + "\n\n" + goal + "\n\nThe K experiment (accuracy against MoCo's queue size) is the ssl_k suite.\n"
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
                   body, notes)
