"""StyleGAN on MNIST: the mapping-depth and style-mixing ablations, FID with 1-4 latents mixed at test time,
a perceptual-path-length proxy, and the paper's figures.

    PYTHONPATH=src:. OMP_NUM_THREADS=1 python -m benchmarks.run stylegan

Every run is ``latentlab train stylegan dataset=mnist`` at the method's defaults except the ablated keys
(``CONFIGS``: mapping depth n_mlp in {0, 8} at mixing 0.9, mixing 0 at depth 8, and StyleGAN's linear output
against the default tanh, the evidence for that default; with
``LATENTLAB_STYLEGAN_ALL=1`` also ``MORE``: depth 2, mixing 0 at depths 0 and 2, and StyleGAN2's modulated
convolution),
``STEPS`` steps, ``SEEDS``. Scored by the project's MNIST feature
network: FID / KID / precision / recall on 5,000 samples against the test split; FID with 1, 2, 3 or 4 latents
per image against the held-out validation part (Karras et al. 2019, Table 2's design); the path length in W
(a proxy of the paper's PPL: feature-network distance instead of LPIPS). The course's claims, from the paper's
Tables 2 and 4: the mapping network lowers FID (n_mlp 8 below 0), and mixing regularisation keeps FID when
several latents are mixed at test time (its rise from 1 to 4 latents smaller with mixing 0.9 than with 0).
"""

from __future__ import annotations

import os
import shutil
import statistics

from . import common
from .common import beyond_noise, cached_eval, data_dir, featurenet_line, fmt_mean_se, gan_test_eval, section, table

SEEDS = (0, 1, 2)
STEPS, QUICK_STEPS = 500, 3
CONFIGS = {"n_mlp 8, mixing 0.9 (defaults)": {}, "n_mlp 8, mixing 0": {"mixing": 0},
           "n_mlp 0, mixing 0.9": {"n_mlp": 0},
           "defaults with StyleGAN's linear output": {"output": "linear"}}   # the evidence for output=tanh
# Measured beside them when the budget allows (LATENTLAB_STYLEGAN_ALL=1): the rest of the grid and StyleGAN2.
MORE = {"n_mlp 2, mixing 0.9": {"n_mlp": 2}, "n_mlp 2, mixing 0": {"n_mlp": 2, "mixing": 0}, "n_mlp 0, mixing 0": {"n_mlp": 0, "mixing": 0},
        "StyleGAN2 (modulated, demodulated)": {"style": "modulated"}}
FIGURES = ("style_mixing", "noise", "noise_layers", "truncated", "samples_grid")


def run(quick: bool = False) -> str:
    seeds = SEEDS[:1] if quick else SEEDS
    tiny = dict(max_train=256, eval_samples=64, ngf=4, ndf=4, z_dim=8, w_dim=8, batch_size=8) if quick else {}
    common.featurenet("mnist")
    pics = common.RESULTS / "stylegan"
    pics.mkdir(parents=True, exist_ok=True)
    rows, every = [], os.environ.get("LATENTLAB_STYLEGAN_ALL")
    for seed in seeds:
        for name, kw in {**CONFIGS, **MORE}.items():
            slug = "".join(ch if ch.isalnum() else "_" for ch in name).strip("_")
            out = common.OUT / "stylegan" / f"{slug}_s{seed}"
            over = dict(dataset="mnist", data_dir=data_dir(), seed=seed, steps=QUICK_STEPS if quick else STEPS,
                        ckpt_every=0, image_every=0, log_every=100, **{**kw, **tiny})
            r = common.train_or_collect("stylegan", out, **over) if name in CONFIGS or every else \
                common.finished_run("stylegan", out, **over)       # a MORE cell measured earlier: kept
            if r is None:
                continue
            rows.append({"config": name, "seed": seed, "seconds": r.seconds, "steps": r.steps,
                         "test": gan_test_eval(out), "mixing": cached_eval(out, "mixing"), "ppl": cached_eval(out, "ppl")})
            if seed == seeds[0] and not kw:
                for fig in FIGURES:
                    shutil.copy(r.artifacts[fig], pics / f"{fig}.png")
        results = {"rows": rows, "seeds": list(seeds[:seeds.index(seed) + 1]), "steps": QUICK_STEPS if quick else STEPS}
        common.save_partial("stylegan", results, report)
    if not rows:                                      # collect mode before any run finished: keep the table
        raise common.SkipSuite("no finished run to collect; the measured table stays")
    return report(results)


def _vals(rows, config, part, key) -> list[float]:
    return [r[part][key] for r in rows if r["config"] == config and key in r[part]]


def _f(xs, d=2):
    return fmt_mean_se(xs, d) if xs else "–"


def _mix_key(rows) -> str:
    keys = next((r["mixing"] for r in rows), {})
    return "fid" if "fid_mix1" in keys else "kid"


def claims(results) -> list[tuple[str, bool, str]]:
    rows, out = results["rows"], []
    deep, flat = _vals(rows, "n_mlp 8, mixing 0.9 (defaults)", "test", "fid"), _vals(rows, "n_mlp 0, mixing 0.9", "test", "fid")
    if deep and flat:
        out.append(("the mapping network lowers FID (8 layers vs none, mixing 0.9)", beyond_noise(flat, deep),
                    f"test FID {_f(deep)} vs {_f(flat)}"))
    k = _mix_key(rows)
    rise = lambda c: [r["mixing"][f"{k}_mix4"] - r["mixing"][f"{k}_mix1"] for r in rows if r["config"] == c]  # noqa: E731
    a, b = rise("n_mlp 8, mixing 0.9 (defaults)"), rise("n_mlp 8, mixing 0")
    if a and b:
        out.append(("mixing regularisation keeps quality with 4 latents mixed at test time (rise 1 -> 4 latents "
                    "smaller with mixing 0.9 than 0)", beyond_noise(b, a),
                    f"validation {k.upper()} rise {_f(a)} (0.9) vs {_f(b)} (0)"))
    return out


def report(results, measured: dict | None = None) -> str:
    rows, seeds = results["rows"], results["seeds"]
    k = _mix_key(rows)
    body_rows = []
    for name in {**CONFIGS, **MORE}:
        if not _vals(rows, name, "test", "kid"):
            continue
        body_rows.append([name, str(len(_vals(rows, name, "test", "kid"))), _f(_vals(rows, name, "test", "fid")), _f(_vals(rows, name, "test", "kid"), 4),
                          _f(_vals(rows, name, "test", "precision"), 3), _f(_vals(rows, name, "test", "recall"), 3),
                          *[_f(_vals(rows, name, "mixing", f"{k}_mix{j}"), 2 if k == "fid" else 4) for j in (1, 2, 3, 4)],
                          _f(_vals(rows, name, "ppl", "ppl_w"), 1)])
    head = "\n".join(f"**Claim: {c} — {'PASS' if ok else 'FAIL'}** ({ev})." for c, ok, ev in claims(results))
    fn_line, _ = featurenet_line("mnist")
    pics = [f for f in FIGURES if (common.RESULTS / "stylegan" / f"{f}.png").is_file()]
    captions = {"style_mixing": "style mixing: B's styles at coarse, middle and fine layers copied into A (Fig. 3)",
                "noise": "one w, different noise; last column the per-pixel s.d. over 64 draws (Fig. 4)",
                "noise_layers": "noise in all layers, none, fine layers only, coarse layers only (Fig. 5)",
                "truncated": "truncation psi = 0.7", "samples_grid": "samples (EMA generator, no truncation)"}
    secs = statistics.mean([r["seconds"] for r in rows] or [0])
    body = (head + "\n\n" + table(
        ["configuration", "seeds", "FID ↓ (test)", "KID ↓", "precision", "recall",
         *[f"{k.upper()} {j} latent{'s' if j > 1 else ''} (val)" for j in (1, 2, 3, 4)], "PPL proxy (W)"], body_rows)
        + "\n\nFigures (seed 0, defaults):\n\n" + "\n".join(f"![{captions[p]}](stylegan/{p}.png)" for p in pics))
    proto = (f"Protocol: {results['steps']} steps per run of `stylegan` on MNIST (28 px: 7 -> 14 -> 28, 5 styles) at its "
             "defaults except the ablated keys; every choice on the held-out 10% of train. FID / KID / precision / "
             "recall: 5,000 EMA samples (psi 1) against 5,000 test images; the mixing columns against the validation "
             "part; features of the " + fn_line + " (not Inception: comparable only within this project). PPL proxy: "
             "2,000 pairs, eps 1e-4, squared distance of unit-normalised feature-network features (no VGG / LPIPS "
             "weights here). Anchors: Karras et al. 2019, Table 2 (FID with 1-4 mixed latents, FFHQ) and Table 4 "
             "(mapping depth), quoted qualitatively (the tables were not read here). ± is the standard error over "
             f"seeds. Mean seconds per run: {secs:.0f}. A {results['steps']}-step budget (batch 32) is far below "
             "StyleGAN's 25M images: read the FIDs beside the gan_mnist suite's DCGAN (its table) and the samples "
             "grid. The linear-output row is StyleGAN's own image (the summed tRGB outputs, no tanh) at the other "
             "defaults: its validation columns are the evidence for the default `output=tanh` (docs/translation.md; "
             "the stylegan_budget study follows both to 2,000 steps).")
    return section("StyleGAN on MNIST: mapping depth, style mixing, noise", "python -m benchmarks.run stylegan",
                   f"{results['steps']} steps per run", ", ".join(map(str, seeds)), body + "\n\n" + proto,
                   measured=measured)


def headline() -> tuple[str, str] | None:
    return common.claim_headline("stylegan", "Karras et al. 2019, Tables 2 and 4 (qualitative)")
