"""How long does StyleGAN need on a CPU before it draws digits: its linear output against a tanh, and R1's weight.

    PYTHONPATH=src:. OMP_NUM_THREADS=1 python -m benchmarks.run studies.stylegan_budget

At StyleGAN's settings (a linear output, the summed tRGB images as they are) 500-step runs score FIDs near 1,000
on the MNIST feature network (DCGAN: 45 after ~4,300 steps). Three questions, each on the held-out validation
part (no test image is read):

- budget: each output (``OUTPUTS``) trained on to ``STEPS`` steps by exact resume (``train_run(extend=True)``:
  a StyleGAN run's schedule does not depend on its length, so resuming gives the weights of one longer run);
- output: StyleGAN's linear image against a tanh (DCGAN's), which puts MNIST's flat background at reach;
- gamma: R1's weight at 500 steps with the linear output, the default 0.01 (StyleGAN2-ADA's CIFAR-10 value)
  against 1 and 10 (FFHQ's), in case the discriminator's lead (generator loss near 8) is too weak a penalty;
- lr: with the tanh, Adam's rate below StyleGAN2's 0.002 (``LRS``) at 1,000 steps, where the default's FID rose
  above its 500-step value, in case the rate makes training unsteady;
- seeds: both outputs at 500 steps over ``OUTPUT_SEEDS`` (seed 0 is the budget runs' first length), the
  five-seed check of the default ``output=tanh``.

One seed per cell but the last question; FID / KID / precision / recall / share read with confidence >= 0.9 on
5,000 EMA samples against 5,000 validation images.
"""

from __future__ import annotations

import shutil

from .. import common
from ..common import data_dir, featurenet_line, fmt_mean_se, section, table, train_run

STEPS = (500, 1000, 2000)
OUTPUTS = ("linear", "tanh")
GAMMAS = (0.01, 1.0, 10.0)
LRS, LR_STEPS = (1e-3, 5e-4), 1000
OUTPUT_SEEDS = (0, 1, 2, 3, 4)
PER = {"gamma": "R1 gamma", "lr": "Adam rate", "seeds": "output and seed"}   # what each question's runs vary
SEED = 0


def _over(steps: int, gamma: float, quick: bool, output: str = "linear", seed: int = SEED, **kw) -> dict:
    tiny = dict(max_train=256, eval_samples=64, ngf=4, ndf=4, z_dim=8, w_dim=8, batch_size=8) if quick else {}
    return dict(dataset="mnist", data_dir=data_dir(), seed=seed, steps=steps, r1_gamma=gamma, output=output, ckpt_every=0,
                image_every=0, log_every=100, **kw, **tiny)


def _row(r, kind: str) -> dict:
    """A finished run's row: the keys the study varies, read back from the run's config, and its metrics."""
    c, m = common.run_cfg(r.run_dir), r.eval.metrics
    return {"kind": kind, "output": c.output, "steps": r.steps, "gamma": c.r1_gamma, "lr": c.lr, "seed": c.seed,
            "seconds": r.seconds, **{k: m[k] for k in ("fid", "kid", "precision", "recall", "confident_fraction") if k in m}}


def run(quick: bool = False) -> str:
    common.featurenet("mnist")
    steps = (2, 4) if quick else STEPS
    rows = []
    for output in OUTPUTS:                                # the budget curves: each length resumed from the last
        prev = None
        for n in steps:
            out = common.OUT / "stylegan_budget" / f"{output}_{n}"
            if prev is not None and common.finished_run("stylegan", out, **_over(n, GAMMAS[0], quick, output)) is None:
                shutil.rmtree(out, ignore_errors=True)
                shutil.copytree(prev, out)
            r = train_run("stylegan", out, extend=True, **_over(n, GAMMAS[0], quick, output))
            rows.append(_row(r, "budget"))
            if not quick:                                 # --quick records nothing
                pics = common.RESULTS / "stylegan_budget"
                pics.mkdir(parents=True, exist_ok=True)
                shutil.copy(r.artifacts["samples_grid"], pics / f"samples_{output}_{n}.png")
            prev = out
    for g in GAMMAS[1:]:
        out = common.OUT / "stylegan_budget" / f"gamma{g:g}_{steps[0]}"
        rows.append(_row(train_run("stylegan", out, **_over(steps[0], g, quick)), "gamma"))
    for lr in LRS:
        n = steps[1] if quick else LR_STEPS
        out = common.OUT / "stylegan_budget" / f"tanh_lr{lr:g}_{n}"
        rows.append(_row(train_run("stylegan", out, **_over(n, GAMMAS[0], quick, "tanh", lr=lr)), "lr"))
    for output in OUTPUTS:                                # seed 0: the budget curve's first run
        for seed in (OUTPUT_SEEDS[:2] if quick else OUTPUT_SEEDS):
            out = common.OUT / "stylegan_budget" / (f"{output}_{steps[0]}" + (f"_s{seed}" if seed != SEED else ""))
            rows.append(_row(train_run("stylegan", out, **_over(steps[0], GAMMAS[0], quick, output, seed)), "seeds"))
    results = {"rows": rows, "seed": SEED}
    common.save_json("stylegan_budget", results)
    return report(results)


def report(results, measured: dict | None = None) -> str:
    rows = results["rows"]
    one = [r for r in rows if r["kind"] != "seeds"]
    f = lambda r, k, d: f"{r[k]:.{d}f}" if k in r else "–"              # noqa: E731
    body = table(["question", "output", "steps", "R1 gamma", "Adam lr", "FID ↓ (val)", "KID ↓", "precision", "recall",
                  "read with conf >= 0.9 %", "seconds"],
                 [[r["kind"], r["output"], r["steps"], f"{r['gamma']:g}", f"{r['lr']:g}", f(r, "fid", 1), f(r, "kid", 1),
                   f(r, "precision", 3), f(r, "recall", 3), f"{100 * r['confident_fraction']:.1f}", f"{r['seconds']:.0f}"]
                  for r in one])
    seeded = {o: [r for r in rows if r["kind"] == "seeds" and r["output"] == o] for o in OUTPUTS}
    if all(seeded.values()):
        k = "fid" if all("fid" in r for rs in seeded.values() for r in rs) else "kid"     # KID below 2,048 samples
        body += "\n\n" + table(["output", "steps", "seeds", f"{k.upper()} ↓ (val), mean ± s.e.", "per seed"],
                                [[o, rs[0]["steps"], len(rs), fmt_mean_se([r[k] for r in rs], 1),
                                  ", ".join(f"{r[k]:.0f}" for r in rs)] for o, rs in seeded.items()])
    pics = "\n".join(f"![StyleGAN, {r['output']} output, samples after {r['steps']} steps]"
                     f"(stylegan_budget/samples_{r['output']}_{r['steps']}.png)" for r in rows if r["kind"] == "budget")
    notes = (f"Protocol: `stylegan` on MNIST at its defaults (batch 32, EMA generator, psi 1) but the keys named, "
             f"seed {results['seed']}, one process, 1 thread (sharing the 2 cores with another suite: seconds are "
             "approximate); 5,000 samples against 5,000 images of the held-out 10% of train, "
             + featurenet_line("mnist")[0] + " (not Inception). Budget rows are one run resumed exactly at each "
             "length; the gamma rows are separate runs of the first length, linear output; the lr rows separate runs with "
             "the tanh; the seeds table repeats the first length over training seeds (± the standard error).")
    return section("StyleGAN on a CPU: its linear image against a tanh, training length, R1's weight, Adam's rate", "python -m benchmarks.run studies.stylegan_budget",
                   " / ".join(dict.fromkeys(str(r["steps"]) for r in rows if r["kind"] == "budget")) + " steps (one "
                   "resumed run per output); " + ", ".join(f"{r['steps']}-step runs per {PER[r['kind']]}" for r in
                                                          {r["kind"]: r for r in rows if r["kind"] != "budget"}.values()),
                   ", ".join(map(str, sorted({r["seed"] for r in rows}))) + f" (seed {results['seed']} except the seeds table)",
                   body + "\n\n" + pics, notes, measured=measured)
