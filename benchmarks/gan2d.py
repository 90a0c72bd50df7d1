"""gan2d on ring8 and grid25: where the plain GAN drops modes, and the remedies, 10 seeds per row.

Every row is the `gan2d` method with the keys it names changed, so rows differ in one idea each:

    ours                  the defaults: non-saturating GAN + R1 (Mescheder et al. 2018), small z, linear lr decay
    ours, r1=0            the same without the penalty
    Unrolled setting      z 256, 2x128 MLPs, Adam 1e-3 (0.5, 0.999), constant lr: the networks and optimiser of
                          Metz et al. 2017's notebook (which uses 1e-4 for D), where the plain GAN collapses
      + R1                r1=0.4
      + PacGAN4           pack=4, batch 128 packs (the same 512 samples a step; Lin et al. 2018)
      WGAN-GP             loss=wasserstein, gp=10, 5 critic steps, Adam 1e-4 (0.5, 0.9), batch 256 (Gulrajani et
                          al. 2017 and its toy-data script), on the same networks

Runs are cached in benchmarks/out/gan2d (``train_run``), so ``python -m benchmarks.gan2d --worker K/N``
processes can fill the cache in parallel (one thread each) before the suite assembles the table.
"""

from __future__ import annotations

import shutil
import sys
import time

import torch

from .common import OUT, RESULTS, fmt_mean_se, fmt_pct, load_json, save_json, section, table, train_run

SEEDS = list(range(10))
UNROLLED = dict(z_dim=256, g_hidden=128, d_hidden=128, betas="[0.5,0.999]", lr=1e-3, lr_decay="none", r1=0)
ROWS = [  # (name, overrides, datasets)
    ("ours: GAN + R1 (defaults)", dict(), ("ring8", "grid25")),
    ("ours without R1 (r1=0)", dict(r1=0), ("ring8", "grid25")),
    ("Unrolled setting: plain GAN", UNROLLED, ("ring8",)),
    ("Unrolled setting + R1 (r1=0.4)", {**UNROLLED, "r1": 0.4}, ("ring8",)),
    ("Unrolled setting + PacGAN4 (pack=4)", {**UNROLLED, "pack": 4, "batch_size": 128}, ("ring8",)),
    ("Unrolled setting, WGAN-GP", {**UNROLLED, "loss": "wasserstein", "gp": 10, "d_steps": 5, "lr": 1e-4,
                                   "betas": "[0.5,0.9]", "batch_size": 256}, ("ring8",)),
]
DATASETS = ("ring8", "grid25")
GOALS = {"ring8": (7.8, 0.90), "grid25": (24.0, 0.85)}       # issue #17: mean modes and high-quality share
# Published rows (modes captured, % high-quality samples) from the VEEGAN (Srivastava et al. 2017, Table 1)
# and PacGAN (Lin et al. 2018, Table 1) papers; their networks and training lengths differ from ours.
PUBLISHED = {
    "ring8": [("GAN (VEEGAN table)", "1", "99.3"), ("GAN (PacGAN table)", "6.3", "98.2"),
              ("Unrolled GAN (VEEGAN table)", "7.6", "35.6"), ("VEEGAN", "8", "52.9"), ("PacGAN4", "7.8", "95.9")],
    "grid25": [("GAN (VEEGAN table)", "3.3", "0.5"), ("GAN (PacGAN table)", "17.3", "94.8"),
               ("Unrolled GAN (VEEGAN table)", "23.6", "16"), ("VEEGAN", "24.6", "40"), ("PacGAN4", "24.8", "93.6")],
}


def overrides(ds: str, seed: int, kw: dict, quick: bool) -> dict:
    """The config keys of one run: a row's keys on top of the defaults (50 steps with --quick)."""
    return dict(dataset=ds, seed=seed, image_every=0, log_every=1000, **kw, **(dict(steps=50) if quick else {}))


def jobs(quick: bool, datasets=DATASETS):
    """(dataset, row name, seed, overrides) of every run, ring8 first (the lecture's picture)."""
    seeds = SEEDS[:1] if quick else SEEDS
    for ds in datasets:
        for name, kw, sets in ROWS:
            if ds not in sets:
                continue
            for seed in seeds:
                yield ds, name, seed, overrides(ds, seed, kw, quick)


def slug(name: str) -> str:
    return "".join(ch for ch in name.split(" (")[0].lower() if ch.isalnum() or ch == "_")


def one(ds, name, seed, kw):
    return train_run("gan2d", OUT / "gan2d" / f"{ds}-{slug(name)}-{seed}", **kw)


def run(quick: bool = False) -> str:
    t_all = time.time()
    rows, raw, verdicts = [], {}, []
    for ds in DATASETS:
        n_modes = 8 if ds == "ring8" else 25
        for name, kw, sets in ROWS:
            if ds not in sets:
                continue
            res = [(seed, one(ds, name, seed, kwj)) for d, n, seed, kwj in jobs(quick) if d == ds and n == name]
            modes = [r.eval.metrics["modes"] for _, r in res]
            hq = [r.eval.metrics["hq_fraction"] for _, r in res]
            kl = [r.eval.metrics["kl_modes"] for _, r in res]
            secs = [r.seconds for _, r in res]
            raw[f"{ds}/{name}"] = dict(overrides=kw, seeds=[s for s, _ in res], modes=modes, hq_fraction=hq,
                                       kl=kl, seconds=secs)
            pic = f"gan2d_{ds}_{slug(name)}.png"
            if not quick:
                shutil.copy(res[0][1].run_dir / "samples.png", RESULTS / pic)
            rows.append([ds, name, f"{fmt_mean_se(modes, 1)} / {n_modes}", f"{min(modes)}-{max(modes)}",
                         fmt_mean_se(hq, 1, 100), fmt_mean_se(kl, 2), f"{max(secs):.0f}",
                         f"[seed 0](benchmarks/results/{pic})"])
            if not kw:   # the goal: every seed's run of the defaults, timed alone with the machine's threads
                gm, gh = GOALS[ds]
                mm, mh = sum(modes) / len(modes), sum(hq) / len(hq)
                timed = train_run("gan2d", OUT / "gan2d" / f"timing-{ds}", **overrides(ds, 0, {}, quick))
                raw[f"{ds}/timing"] = dict(seconds=timed.seconds, threads=torch.get_num_threads())
                ok = mm >= gm and mh >= gh and timed.seconds <= 60
                verdicts.append(f"- {ds}, defaults: mean {mm:.2f} / {n_modes} modes (goal >= {gm}), "
                                f"{100 * mh:.1f}% high quality (goal >= {100 * gh:.0f}%), {timed.seconds:.0f} s of "
                                f"training alone on {torch.get_num_threads()} threads (goal <= 60 s): "
                                f"**{'PASS' if ok else 'FAIL'}**")
        for name, m, h in PUBLISHED[ds]:
            rows.append([ds, f"{name} (published)", m, "", h, "", "", ""])
    save_json("gan2d", raw)
    body = "\n".join(verdicts) + "\n\n" + table(
        ["dataset", "model", "modes captured", "min-max", "% high quality", "KL(modes‖uniform)",
         "slowest run (s)", "samples"], rows)
    notes = ("Protocol (VEEGAN/PacGAN): 2,500 samples from fixed noise; a sample is high quality within 3σ of its "
             "nearest mode; a mode is captured if it is the nearest mode of at least one high-quality sample. "
             "ring8: 8 Gaussians on the unit circle, σ = 0.01; grid25: 5×5 grid at {-4,-2,0,2,4}², σ = 0.05. "
             "Ours: the `gan2d` defaults (non-saturating loss + R1 γ = 0.4, G 2×256 and D 2×128 ReLU MLPs, z ∈ R², "
             "Adam 2e-3 β = (0, 0.99) decaying linearly to 0, batch 512, 6,000 steps); every other row changes "
             "only the keys it names (the Unrolled setting: `z_dim=256 g_hidden=128 d_hidden=128 "
             "betas=[0.5,0.999] lr=1e-3 lr_decay=none r1=0`). Mean ± standard error over the seeds; 'slowest "
             "run' is training time with one thread while a second run shared the machine (the goal's time is a "
             "separate run alone, above). The recipe was chosen on these mixtures (they have no test split: the "
             "protocol draws fresh samples). Published networks and training lengths differ (larger MLPs, 25k+ "
             "steps), so those rows are anchors, not a like-for-like match. Why the plain GAN drops modes in the "
             "Unrolled setting: unregularised GAN training is not locally convergent (Mescheder et al. 2018), so "
             "with a constant learning rate the generator's samples move as one blob from mode to mode, chasing "
             "the discriminator, and the run ends wherever the blob is (Metz et al. 2017, Fig. 1); in that "
             "setting R1 (a penalty on D's gradient at the data) and PacGAN's packing recover all 8 modes in every "
             "seed, at lower precision than our recipe; WGAN-GP (its paper's lr 1e-4) has not converged in 6,000 "
             "generator steps: its samples spread over the ring, so few lie within 3σ of a mode and few modes "
             "count as captured (the WGAN-GP paper trains its toy runs for 100k steps).")
    return section("gan2d: mode collapse on 2-D mixtures and its remedies", "python -m benchmarks.run gan2d",
                   f"6,000 generator steps per run (defaults), total {time.time() - t_all:.0f} s",
                   ", ".join(map(str, SEEDS[:1] if quick else SEEDS)), body, notes)


def headline() -> tuple[str, str] | None:
    """(the defaults on both mixtures, PacGAN4's published rows), from results/gan2d.json."""
    d = load_json("gan2d")
    if not d:
        return None
    ours = ROWS[0][0]
    best = "; ".join(f"{ds}: {fmt_mean_se(d[f'{ds}/{ours}']['modes'])} / {8 if ds == 'ring8' else 25} modes, "
                     f"{fmt_pct(d[f'{ds}/{ours}']['hq_fraction'])}% high quality" for ds in DATASETS if f"{ds}/{ours}" in d)
    pac = {ds: next(r for r in PUBLISHED[ds] if r[0] == "PacGAN4") for ds in DATASETS}
    return (f"ours (defaults, {len(d[f'ring8/{ours}']['modes'])} seeds): {best}",
            "PacGAN4 (Lin et al. 2018, Table 1): " + "; ".join(f"{ds}: {pac[ds][1]} modes, {pac[ds][2]}% high quality"
                                                              for ds in DATASETS))


if __name__ == "__main__":   # python -m benchmarks.gan2d --worker K/N: fill the run cache, 1 thread
    k, n = map(int, sys.argv[sys.argv.index("--worker") + 1].split("/"))
    torch.set_num_threads(1)
    for i, job in enumerate(jobs(False)):
        if i % n == k:
            one(*job)
    print(f"gan2d worker {k}/{n} done", flush=True)
