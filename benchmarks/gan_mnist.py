"""Image GANs on MNIST at an equal CPU budget, beside PyTorch-GAN's published DCGAN script.

    PYTHONPATH=src:. python -m benchmarks.run gan_mnist

Every model trains for the same wall time (``BUDGET_S``, training only) with its defaults, for each seed of
``SEEDS``, and is scored on 5,000 samples in the feature space of the project's MNIST classifier:

- against the held-out validation part of MNIST train (every choice of recipe was made on this), and
- against 5,000 images of the MNIST test split: the figures reported here.

The peer is eriklindernoren/PyTorch-GAN ``implementations/dcgan/dcgan.py`` run unchanged, for the same
time on the same machine, by ``benchmarks/peer/pytorch_gan_runner.py`` in its own virtual environment (it
needs torchvision, which this project never imports). Set ``LATENTLAB_PEER_PYTHON`` to that environment's
python and ``LATENTLAB_PEER_GAN`` to a checkout of PyTorch-GAN (or a bare git mirror of it); without
them the peer's rows are reported as not run. The python defaults to ``$LATENTLAB_PEER_HOME/venv``
(/work/peer, outside the repository), where a script read out of a bare mirror is written too. Its 32 px
samples are resized to 28 px (bilinear, antialiased) before scoring; the cost of that resize alone is measured on real images (the "resize floor" row).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import torch

from .common import (OUT, RESULTS, data_dir, featurenet_line, fmt_mean_se, load_json, mean_se, save_json, section,
                     table, train_gan_models)

BUDGET_S = 300
QUICK_S = 10
SEEDS = (0, 1, 2)
MODELS = ["dcgan", "cgan", "acgan", "wgan_gp"]  # + "wgan" (Algorithm 1): one seed, see common.GAN_ONE_SEED
N_REF = 5000
PEER_SCRIPT = "implementations/dcgan/dcgan.py"
PEER_MIRROR = Path("/work/.mirror/eriklindernoren+PyTorch-GAN/repo")
PEER_HOME = Path(os.environ.get("LATENTLAB_PEER_HOME", "/work/peer"))  # outside the repo: its venv, its script
PEER_VENV = PEER_HOME / "venv" / "bin" / "python"
# the goals of the lecture-claims issue, checked on the test figures (mean over seeds)
GOALS = {"fid_ratio": 1.5, "confident": 0.8, "recall": 0.3, "class_consistency": 0.9, "cond_recall": 0.2}


# -- the peer --------------------------------------------------------------------------------------

def peer_paths() -> tuple[Path, Path] | None:
    """(python of the peer's environment, path of its dcgan.py), or None when either is missing."""
    py = Path(os.environ.get("LATENTLAB_PEER_PYTHON", PEER_VENV))
    src = Path(os.environ.get("LATENTLAB_PEER_GAN", PEER_MIRROR))
    if not py.is_file() or not src.exists():
        return None
    if (src / PEER_SCRIPT).is_file():
        return py, src / PEER_SCRIPT
    dst = PEER_HOME / "PyTorch-GAN" / PEER_SCRIPT     # a bare mirror: read the file out of git, outside the repo
    dst.parent.mkdir(parents=True, exist_ok=True)
    text = subprocess.run(["git", "--git-dir", str(src), "show", f"HEAD:{PEER_SCRIPT}"], capture_output=True,
                          text=True)
    if text.returncode:
        return None
    dst.write_text(text.stdout)
    return py, dst


def to_28(x: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, 32, 32) -> float (N, C, 28, 28) in [0, 1], bilinear with antialiasing, 8-bit quantised."""
    y = torch.nn.functional.interpolate(x.float() / 255, size=(28, 28), mode="bilinear", antialias=True,
                                        align_corners=False)
    return (y.clamp(0, 1) * 255).round() / 255


def score(images01: torch.Tensor, ref: dict, fn, seed: int) -> dict:
    from latentlab.eval import gan_metrics as gm
    ff, pred, conf = [torch.cat(t) for t in zip(*(fn.read(images01[i:i + 1000]) for i in range(0, len(images01), 1000)))]
    return gm.sample_metrics(ref["features"], ff, pred, conf, 10, seed=seed)[0]


def references(fn) -> dict:
    """Features of the first N_REF images of the val part of train and of test; the val images too."""
    from latentlab.data import load_dataset
    from latentlab.methods._image_gan import VAL_SPLIT_SEED
    full = load_dataset("mnist", "train", data_dir())
    _, val = full.train_val(0.1, VAL_SPLIT_SEED)
    test = load_dataset("mnist", "test", data_dir())
    out = {}
    for name, ds in (("val", val), ("test", test)):
        x = ds.images[:N_REF].float() / 255
        out[name] = {"images": x, "features": torch.cat([fn.read(x[i:i + 1000])[0] for i in range(0, len(x), 1000)])}
    return out


def resize_floor(refs: dict, fn) -> dict:
    """The metrics of real val images sent 28 -> 32 (the peer's Resize(32)) -> 28 (our scoring), against test."""
    x = refs["val"]["images"]
    up = torch.nn.functional.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
    real_rt = to_28((up.clamp(0, 1) * 255).round().to(torch.uint8))
    return {"resized": score(real_rt, refs["test"], fn, 1), "real": score(x, refs["test"], fn, 1)}


def run_peer(budget: float, seeds, refs: dict, fn) -> list[dict] | None:
    paths = peer_paths()
    if paths is None:
        return None
    py, script = paths
    runner = Path(__file__).resolve().parent / "peer" / "pytorch_gan_runner.py"
    rows = []
    for seed in seeds:
        out = OUT / "peer" / f"dcgan_s{seed}_{int(budget)}s.npz"
        if not out.is_file():
            subprocess.run([str(py), str(runner), str(script), str(budget), str(out), "--seed", str(seed),
                            "--data", data_dir()], check=True, stdout=subprocess.DEVNULL)
        meta = json.loads(out.with_suffix(".json").read_text())
        import numpy as np
        arrays = np.load(out)
        by_mode = {k: to_28(torch.from_numpy(arrays[k])) for k in arrays.files}
        val = {k: score(v, refs["val"], fn, seed + 1) for k, v in by_mode.items()}
        mode = min(val, key=lambda k: val[k]["fid"])  # BatchNorm mode chosen on validation
        rows.append({"method": "PyTorch-GAN dcgan.py", "seed": seed, "steps": meta["steps"], "seconds": meta["seconds"],
                     "val": val[mode], "test": score(by_mode[mode], refs["test"], fn, seed + 1), "bn_mode": mode,
                     "val_fid_by_mode": {k: v["fid"] for k, v in val.items()}, "meta": meta})
        if seed == seeds[0]:
            from latentlab.viz.grid import make_grid, save_image
            save_image(make_grid(by_mode[mode][:64], nrow=8), RESULTS / "gan_mnist" / "peer_dcgan.png", scale=2)
    return rows


# -- the report ------------------------------------------------------------------------------------

def goals(by: dict[str, list[dict]]) -> list[list[str]]:
    """The issue's goals, each with its measured value (means over seeds, test reference) and verdict."""
    def mean(name, split, key):
        xs = [r[split][key] for r in by.get(name, []) if r[split].get(key) is not None]
        return mean_se(xs)[0] if xs else None

    out = []
    ours, peer = mean("dcgan", "test", "fid"), mean("PyTorch-GAN dcgan.py", "test", "fid")
    if peer is not None and ours is not None:
        out.append(["dcgan FID at least 1.5x lower than PyTorch-GAN's dcgan.py",
                    f"{peer:.0f} / {ours:.0f} = {peer / ours:.2f}x", ok(peer / ours >= GOALS["fid_ratio"])])
    else:
        out.append(["dcgan FID at least 1.5x lower than PyTorch-GAN's dcgan.py", "peer not run", "NOT MEASURED"])
    c, r = mean("dcgan", "test", "confident_fraction"), mean("dcgan", "test", "recall")
    out.append(["dcgan: >= 80% of samples read with confidence >= 0.9, recall >= 0.3",
                f"{100 * c:.0f}%, recall {r:.2f}", ok(c >= GOALS["confident"] and r >= GOALS["recall"])])
    for name in ("cgan", "acgan"):
        cc, r = mean(name, "test", "class_consistency"), mean(name, "test", "recall")
        if cc is None:
            continue
        out.append([f"{name}: class consistency >= 90% with recall >= 0.2", f"{100 * cc:.0f}%, recall {r:.2f}",
                    ok(cc >= GOALS["class_consistency"] and r >= GOALS["cond_recall"])])
    c = mean("wgan_gp", "test", "confident_fraction")
    if c is not None:
        out.append(["wgan_gp draws readable digits (>= 80% read with confidence >= 0.9)", f"{100 * c:.0f}%",
                    ok(c >= GOALS["confident"])])
    return out


def ok(b: bool) -> str:
    return "**PASS**" if b else "**FAIL**"


def run(quick: bool = False) -> str:
    budget = QUICK_S if quick else BUDGET_S
    seeds = SEEDS[:1] if quick else SEEDS
    from .common import featurenet
    fn_line, _ = featurenet_line("mnist")
    fn = featurenet("mnist")
    refs = references(fn)
    rows = train_gan_models("gan_mnist", "mnist", MODELS[:1], budget, seeds)
    peer = run_peer(budget, seeds, refs, fn)                # right after dcgan: the same machine state
    rows += train_gan_models("gan_mnist", "mnist", MODELS[1:2] if quick else MODELS[1:], budget, seeds)
    floor = resize_floor(refs, fn)
    save_json("gan_mnist", {"rows": rows + (peer or []), "floor": floor, "budget_s": budget, "seeds": list(seeds)})
    by: dict[str, list[dict]] = {}
    for r in rows + (peer or []):
        by.setdefault(r["method"], []).append(r)

    def cells(name, rs):
        g = lambda split, k, s=1.0, d=2: (fmt_mean_se([r[split][k] for r in rs], d, s)
                                          if all(r[split].get(k) is not None for r in rs) else "–")
        grid = rs[0].get("grid", "benchmarks/results/gan_mnist/peer_dcgan.png")
        return [name, fmt_mean_se([r["steps"] for r in rs], 0),
                g("test", "fid", d=1), g("val", "fid", d=1), g("test", "kid", d=2), g("test", "precision"),
                g("test", "recall"), g("test", "coverage"), g("test", "confident_fraction", 100, 1),
                g("test", "class_kl", d=3), g("test", "class_consistency", 100, 1),
                f"[grid]({grid})" + (f", [classes]({rs[0]['class_grid']})" if "class_grid" in rs[0] else "")]

    body = table(["goal (issue: the lecture's claims, §3)", "measured (test reference, mean over seeds)", "verdict"],
                 goals(by))
    body += "\n\n" + table(
        ["model", "G steps", "FID test ↓", "FID val ↓", "KID test ↓", "precision", "recall", "coverage",
         "read with conf >= 0.9 (%)", "class KL ↓", "class consistency (%)", "samples"],
        [cells(name, rs) for name, rs in by.items()])
    fl = floor
    body += ("\n\nFloors (real images against the test reference): MNIST val images FID "
             f"{fl['real']['fid']:.1f}, read with confidence {100 * fl['real']['confident_fraction']:.1f}%; the same "
             f"images resized 28 -> 32 -> 28 as the peer's samples are: FID {fl['resized']['fid']:.1f}, "
             f"{100 * fl['resized']['confident_fraction']:.1f}%.")
    if peer:
        body += " Peer BatchNorm mode at sampling (chosen on val FID): " + ", ".join(
            f"seed {r['seed']}: {r['bn_mode']} ({', '.join(f'{k} {v:.0f}' for k, v in r['val_fid_by_mode'].items())})"
            for r in peer) + "."
    p = rows[0]["protocol"]
    notes = (f"Protocol: {fn_line}; FID/KID/precision/recall (k=3)/coverage (k=5) on {p['n_fake']} generated "
             f"samples (8-bit quantised) against {N_REF} images of the MNIST test split (the 'FID val' column: "
             "against the held-out 10% of train, split seed 0, on which every recipe choice was made). FID is "
             "torchmetrics' with float64 accumulation on the classifier's 128-d features, so it is **not comparable "
             "to Inception FIDs**. 'read with conf >= 0.9': share of samples whose predicted class has softmax "
             "probability >= 0.9; class KL: predicted-class histogram against uniform; class consistency "
             "(conditional models): the classifier's accuracy on samples of the requested class. Each model runs "
             "with its method's defaults (`latentlab train METHOD --help` names them and the paper's values), "
             "channels_last, both cores; the last step is evaluated. The peer runs its published script unchanged "
             "(batch 64, Adam 2e-4 (0.5, 0.999), N(0, I) prior, its own 32 px networks; full MNIST train) for the "
             "same training time, timed from its first batch; mean ± standard error over seeds.")
    return section("Image GANs on MNIST (equal CPU budget, beside PyTorch-GAN)",
                   "PYTHONPATH=src:. python -m benchmarks.run gan_mnist",
                   f"{budget} s of training per model and seed (max_seconds; the peer: the same, from its first batch)",
                   ", ".join(map(str, seeds)), body, notes)


def headline() -> tuple[str, str] | None:
    """(DCGAN's test FID and share read, the peer's in the same time), from results/gan_mnist.json."""
    d = load_json("gan_mnist")
    if not d:
        return None
    by = lambda name: [r for r in d["rows"] if r["method"] == name]                        # noqa: E731
    ours, peer = by("dcgan"), by("PyTorch-GAN dcgan.py")
    txt = lambda rs: (f"test FID {fmt_mean_se([r['test']['fid'] for r in rs], 0)}, "       # noqa: E731
                      f"{fmt_mean_se([r['test']['confident_fraction'] for r in rs], 0, 100)}% read")
    return (f"DCGAN, {d['budget_s']} s, {len(ours)} seeds: {txt(ours)} (classifier features, not Inception)",
            f"PyTorch-GAN's dcgan.py, same time and machine: {txt(peer)}" if peer else "PyTorch-GAN's dcgan.py: not run")
