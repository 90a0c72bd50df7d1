"""MNIST-M: the closest self-supervised configuration, given 32x the ssl suite's CPU budget.

``ssl_dim`` found RotNet with batch 32 and 512-d features the closest to the goal at 30 s (80.6% of the
supervised classifier of the same width), and ``ssl_budget`` that 128-d SimCLR and RotNet gain about
4 points of that ratio per 4x of CPU time. This suite trains that configuration, and the supervised
network of the same width, for 960 s each (seeds 0, 1, 2), beside the untrained encoder of that width and
SimCLR with the same features (seed 0 only: below its untrained encoder at 30 s in ``ssl_dim``).

The other ssl suites fit their probes on 5,000 training images to stay within minutes. Here every run is
also probed as the linear-evaluation protocols of the papers do, on the whole training split (train
minus the validation split): the 512-d ``forward_features`` (DINO's table) and the last conv block's
maps (``layer=maps``, 4096 values: the conv-block probe of Gidaris et al. 2018),
and a k-NN with the whole split as the bank. These full-split probes are cached per run, validation
size and checkpoint step (``probes_full_val<n>_<step>.json`` in the run directory), so an interrupted
suite does not refit them.
"""

from __future__ import annotations

import json
import statistics

import torch

from .common import OUT, save_json, section, table
from .ssl import _evaluate, _one, _pm, probe_note, train_sizes
from .ssl_dim import ROWS  # the same four encoders: supervised, untrained, RotNet batch 32, SimCLR

SECONDS = 960.0
DIM = 512
SEEDS = (0, 1, 2)
ONE_SEED = ("simclr",)       # methods trained with seed 0 only
GOAL = 0.95                  # the ssl suite's goal: best self-supervised linear >= 95% of the supervised classifier


def _full_probes(run_dir, step: int, max_train: int | None, max_val: int) -> dict:
    """The ssl suite's probes (linear on features and conv maps, k-NN) with ``max_train`` (None: all) train
    images, keys suffixed ``_full``; cached in the run directory, keyed by what they depend on."""
    path = run_dir / f"probes_full{max_train or ''}_val{max_val}_{step}.json"
    if path.is_file():
        return json.loads(path.read_text())
    r = _evaluate(run_dir, max_train, max_val, usps=False, maps=True)
    out = {f"{k}_full": r[k] for k in ("linear", "linear_maps", "knn", "wd", "wd_maps")}
    path.write_text(json.dumps(out, indent=2) + "\n")
    return out


def train_seed(seed: int, secs: float = SECONDS, max_train: int = 5000, max_val: int = 2000,
               full_train: int | None = None) -> dict:
    """Every row of one seed: train (or reuse) and probe. Seeds are independent, so two can run side by side."""
    out = {}
    for i, (label, method, kw, trained) in enumerate(ROWS):
        if seed and method in ONE_SEED:
            continue
        tag = f"-long{secs:g}-dim{DIM}-{i}" + (f"-seed{seed}" if seed else "")
        row = _one(method, "mnist_m", secs if trained else 0.01, max_train, max_val, tag=tag, seed=seed,
                   num_features=DIM, **kw)
        row.update(_full_probes(OUT / "ssl" / f"{method}-mnist_m{tag}", row["steps"], full_train, max_val))
        out[label] = row
    return out


def run(quick: bool = False) -> str:
    torch.set_num_threads(1)
    secs, seeds = (2.0, SEEDS[:1]) if quick else (SECONDS, SEEDS)
    max_train, max_val, full_train = (500, 200, 1000) if quick else (5000, 2000, None)
    per_seed = {s: train_seed(s, secs, max_train, max_val, full_train) for s in seeds}
    raw = {label: [per_seed[s][label] for s in seeds if label in per_seed[s]] for label, *_ in ROWS}
    save_json("ssl_long", raw)
    sup = {s: per_seed[s]["supervised"]["test_accuracy"] for s in seeds}
    untrained = {s: per_seed[s]["untrained"] for s in seeds}
    n_train = train_sizes("mnist_m")[1]                                    # what the runs train on

    def cell(label, fn):                                                    # mean ± sd over the row's seeds
        return _pm([fn(per_seed[s][label], s) for s in seeds if label in per_seed[s]])

    rows, best = [], None
    for label, method, _, trained in ROWS:
        rs = raw[label]
        name = f"{label} (its classifier: {_pm(list(sup.values()))})" if method == "supervised" else label
        rows.append([name, str(len(rs)), f"{statistics.mean(r['steps'] for r in rs):.0f}" if trained else "-",
                     f"{statistics.mean(r['steps'] * r['batch_size'] for r in rs) / n_train:.2f}" if trained else "-",
                     cell(label, lambda r, s: r["linear"]),
                     cell(label, lambda r, s: r["linear_full"]),
                     cell(label, lambda r, s: r["linear_full"] / sup[s]) + "%",
                     cell(label, lambda r, s: r["knn_full"]),
                     cell(label, lambda r, s: r["linear_maps_full"]),
                     cell(label, lambda r, s: r["linear_maps_full"] - untrained[s]["linear_maps_full"]),
                     cell(label, lambda r, s: r["linear_maps_full"] / sup[s]) + "%"])
        if trained and method != "supervised":
            for key, layer in (("linear_full", "512-d features"), ("linear_maps_full", "conv maps")):
                ratios = [per_seed[s][label][key] / sup[s] for s in seeds if label in per_seed[s]]
                if best is None or statistics.mean(ratios) > statistics.mean(best[2]):
                    best = (label, layer, ratios, key)
    label, layer, ratios, key = best
    sup_same = [per_seed[s][label][key] / per_seed[s]["supervised"][key] for s in seeds if label in per_seed[s]]
    met = min(ratios) >= GOAL
    goal = (f"Goal (best self-supervised linear accuracy >= {100 * GOAL:.0f}% of the supervised classifier, full-split "
            f"probe): best is **{label}** on its {layer}, {_pm(ratios)}% of the supervised classifier over "
            f"{len(ratios)} seed(s) (lowest seed {100 * min(ratios):.1f}%) -> **{'met' if met else 'NOT met'}**"
            f"{' in every seed' if met and len(ratios) > 1 else ''}. Against the supervised network probed the same way "
            f"(same layer, same probe): {_pm(sup_same)}%.")
    notes = (f"MNIST-M, ConvNet (width 32, `num_features={DIM}`), Adam 1e-3, batch 256 unless stated, "
             f"`augment=digits_strong` for RotNet and SimCLR, single process, 1 thread, {secs:g} s of wall time per trained "
             f"run (runs may share the 2 cores), seeds {', '.join(map(str, seeds))} (SimCLR: seed 0). Epochs: images seen / "
             f"{n_train:,} (train minus the 10% validation split). 'linear, {max_train:,}': "
             + probe_note(max_train, max_val).replace("Probes as in", "the probe of") + " "
             f"'full train': the same probes fitted on the whole training split "
             f"({n_train if full_train is None else full_train:,} images: train minus the validation split), as the papers' "
             f"linear evaluations do; k-NN with that split as the bank. 'conv maps': the last conv block's 4096 values "
             f"(`--layer maps`), the conv-block probe of the pretext-task papers (Gidaris et al. 2018 probe each conv "
             f"block; Goyal et al. 2019 the conv layers). Cells: mean ± sample sd over seeds; gains and ratios are taken "
             f"per seed against that seed's untrained encoder and supervised classifier. Published anchor: Gidaris et al. "
             f"2018 train classifiers on each conv block of RotNet and of a supervised network on CIFAR-10 and report "
             f"a small gap (figures not quoted here: other data, network and probe).")
    return section("MNIST-M: the closest self-supervised configuration with 960 s of CPU",
                   "PYTHONPATH=src:. python -m benchmarks.run ssl_long", f"{secs:g} s of training per run (CPU)",
                   ", ".join(map(str, seeds)),
                   table(["encoder", "seeds", "steps", "epochs", f"linear, {max_train:,}", "linear, full train",
                          "/ supervised classifier", "k-NN, full train", "conv maps, full train",
                          "conv maps gained over untrained", "conv maps / supervised classifier"], rows),
                   goal + "\n\n" + notes)
