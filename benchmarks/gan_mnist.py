"""Image GANs on MNIST at an equal CPU budget: FID/KID, precision/recall, coverage, class statistics.

    PYTHONPATH=src:. nice -n 10 python -m benchmarks.run gan_mnist

Every model trains for the same wall-clock budget (``max_seconds``) with the paper's optimiser settings
and DCGAN networks of width ngf = ndf = 32, then is evaluated on 5,000 samples against 5,000 images of
the held-out validation part of MNIST train, in the feature space of the project's MNIST classifier.
"""

from __future__ import annotations

import shutil

from .common import OUT, RESULTS, data_dir, save_json, section, table, train_run

BUDGET_S = 150
QUICK_S = 10
MODELS = ["dcgan", "wgan", "wgan_gp", "cgan", "acgan"]
COMMON = dict(ngf=32, ndf=32, steps=10**7, eval_samples=5000, image_every=0, log_every=100, ckpt_every=0,
              seed=0, channels_last=True)
N_CRITIC = {"wgan": 5, "wgan_gp": 5}


def featurenet_line(dataset: str) -> tuple[str, dict]:
    from latentlab.eval.featurenet import load_featurenet
    fn = load_featurenet(dataset, data_dir())
    m = fn.meta
    return (f"feature network `{fn.name}` ({m['steps']} steps, val accuracy {m.get('val_accuracy', 0):.4f}, "
            f"test accuracy {m.get('test_accuracy', 0):.4f}, sha256 `{fn.sha256[:16]}…`)"), fn.protocol()


def train_models(suite: str, dataset: str, models: list[str], budget: float) -> list[dict]:
    """Train each model for ``budget`` seconds, evaluate it, copy its sample grid into results/<suite>/."""
    rows = []
    pics = RESULTS / suite
    pics.mkdir(parents=True, exist_ok=True)
    for name in models:
        res = train_run(name, OUT / suite / name, dataset=dataset, max_seconds=budget, data_dir=data_dir(), **COMMON)
        batch = 64 if name in N_CRITIC else 128
        real_per_step = batch * N_CRITIC.get(name, 1)
        grid = pics / f"{name}.png"
        shutil.copy(res.artifacts["samples_grid"], grid)
        extra = {}
        if "class_grid" in res.artifacts:
            shutil.copy(res.artifacts["class_grid"], pics / f"{name}_classes.png")
            extra["class_grid"] = f"benchmarks/results/{suite}/{name}_classes.png"
        rows.append({"method": name, "steps": res.steps, "seconds": res.seconds,
                     "g_steps_per_s": res.steps / res.seconds,
                     "real_images_per_s": res.steps * real_per_step / res.seconds,
                     "metrics": res.eval.metrics, "protocol": res.eval.protocol,
                     "grid": f"benchmarks/results/{suite}/{name}.png", **extra})
    save_json(suite, rows)
    return rows


def compile_check(steps: int = 300) -> list[list]:
    """dcgan eager vs torch.compile for ``steps`` steps: total time (compile included) and last-window rate."""
    import json
    rows = []
    for comp in (False, True):
        out = OUT / "gan_mnist_compile" / ("compiled" if comp else "eager")
        res = train_run("dcgan", out, dataset="mnist", data_dir=data_dir(), compile=comp, eval_at_end=False,
                        **{**COMMON, "steps": steps, "log_every": max(1, steps // 3)})
        recs = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
        recs = [r for r in recs if "steps_per_s" in r]
        (s1, r1), (s2, r2) = [(r["step"], r["steps_per_s"]) for r in recs[-2:]]
        steady = (s2 - s1) / (s2 / r2 - s1 / r1)             # the cumulative rates -> rate of the last window
        rows.append(["compiled" if comp else "eager", res.steps, f(res.seconds, 1), f(steady, 2)])
    return rows


def f(x, d=3):
    return "–" if x is None else f"{x:.{d}f}"


def run(quick: bool = False) -> str:
    budget = QUICK_S if quick else BUDGET_S
    fn_line, _ = featurenet_line("mnist")
    rows = train_models("gan_mnist", "mnist", MODELS, budget)
    body = table(
        ["model", "G steps", "G steps/s", "real img/s", "FID ↓", "KID ↓", "precision", "recall", "density",
         "coverage", "class coverage", "class KL ↓", "class consistency", "samples"],
        [[r["method"], r["steps"], f(r["g_steps_per_s"], 2), f(r["real_images_per_s"], 0),
          f(r["metrics"].get("fid"), 2), f(r["metrics"]["kid"], 2), f(r["metrics"]["precision"]),
          f(r["metrics"]["recall"]), f(r["metrics"]["density"]), f(r["metrics"]["coverage"]),
          f(r["metrics"]["class_coverage"], 2), f(r["metrics"]["class_kl"]),
          f(r["metrics"].get("class_consistency")),
          f"[grid]({r['grid']})" + (f", [classes]({r['class_grid']})" if "class_grid" in r else "")]
         for r in rows])
    comp = compile_check(30 if quick else 300)
    body += "\n\ntorch.compile check (dcgan, same settings):\n\n" + table(
        ["mode", "steps", "seconds (compile included)", "steady G steps/s (last third)"], comp)
    p = rows[0]["protocol"]
    notes = (f"Protocol: {fn_line}; FID/KID/precision/recall (k=3)/density/coverage (k=5) on "
             f"{p['n_fake']} generated samples (noise seed {p['noise_seed']}, 8-bit quantised) against {p['n_real']} "
             f"images of the reference split '{p['reference_split']}'; FID is torchmetrics' with float64 "
             "accumulation on the classifier's 128-d features, so it is **not comparable to Inception FIDs**. "
             "Class coverage/KL: the classifier's predicted-class histogram of the samples against uniform; "
             "class consistency (conditional models): the classifier's accuracy on samples of the requested class. "
             "Networks: DCGAN (nets/dcgan.py) with ngf = ndf = 32 (chosen for speed on this "
             "machine); optimisers and n_critic are each paper's defaults (dcgan/cgan/acgan: Adam 2e-4, (0.5, 0.999), "
             "batch 128; wgan: RMSProp 5e-5, c = 0.01, m = 64, n_critic = 5; wgan_gp: Adam 1e-4, (0, 0.9), lambda = 10, "
             "m = 64, n_critic = 5). 'real img/s' counts the real images the discriminator/critic consumes "
             "(n_critic × m per generator step for the WGANs); channels_last on; torch.compile off in the main "
             "table, its payback is measured in the second table. The last step is evaluated (best-checkpoint tracking off, to keep the "
             "budget pure training). The WGAN of Algorithm 1 with lr 5e-5 is known to need far more generator steps "
             "than this budget allows.")
    return section("Image GANs on MNIST (equal CPU budget)",
                   "PYTHONPATH=src:. nice -n 10 python -m benchmarks.run gan_mnist",
                   f"{budget} s of training per model (max_seconds), on the shared CPU, OMP_NUM_THREADS=1",
                   "seed 0 (one run per model)", body, notes)
