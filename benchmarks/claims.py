"""The lecture's claims, each checked by an experiment and given a verdict: PASS, FAIL or NOT MEASURED.

    python -m benchmarks.run claims        (also: make claims)

A claim either runs its own small experiment here (stated budget and seeds; runs are cached in
benchmarks/out/claims, so a re-run reuses them) or takes its evidence from the suite that measures it at
scale, named in its row with that suite's commit (``python -m benchmarks.run SUITE`` re-measures it). A
claim whose experiment does not exist yet is NOT MEASURED, and one that does not hold is FAIL, with its
numbers: nothing is hidden. The verdict rule of each claim is written beside it, before its numbers.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass

from .common import (OUT, RESULTS, SPREAD, beyond_noise, data_dir, fmt_mean_se, load_json, mean_se, save_json, section, table,
                     train_run)

SUITE_COMMIT = {}   # suite name -> the commit its results were measured at (read from its .md)


@dataclass
class Verdict:
    verdict: str          # PASS | FAIL | NOT MEASURED
    evidence: str
    budget: str
    picture: str = ""


def _suite_json(name: str):
    f = RESULTS / f"{name}.json"
    if not f.is_file():
        return None
    md = RESULTS / f"{name}.md"
    if md.is_file():
        for line in md.read_text().splitlines():
            if line.startswith("- commit:"):
                SUITE_COMMIT[name] = line.split(":", 1)[1].split(",")[0].strip()
    return json.loads(f.read_text())


# -- claims with their own experiment -----------------------------------------------------------

def gan1d_theta(quick: bool) -> Verdict:
    seeds = [0] if quick else [0, 1, 2, 3, 4]
    errs, means = [], []
    for s in seeds:
        r = train_run("gan1d", OUT / "claims" / f"gan1d-{s}", seed=s, image_every=0, **({"steps": 50} if quick else {}))
        errs.append(r.eval.metrics["abs_error"])
        means.append(r.eval.metrics["data_mean"])
    ok = all(e < 0.1 * abs(m) for e, m in zip(errs, means))
    return Verdict("PASS" if ok else "FAIL",
                   f"|θ - data mean| = {fmt_mean_se(errs, 3)} (data mean {means[0]:g}; rule: < 10% of the mean in every "
                   f"seed; worst {max(errs):.3f})", f"gan1d defaults, seeds {seeds[0]}-{seeds[-1]}")


def gan2d_modes(quick: bool) -> Verdict:
    from . import gan2d
    seeds = [0] if quick else gan2d.SEEDS
    stats: dict[str, tuple[list, list]] = {}
    for job in gan2d.jobs(quick, datasets=("ring8",)):
        m = gan2d.one(*job).eval.metrics
        modes, hq = stats.setdefault(job[1], ([], []))
        modes.append(m["modes"]), hq.append(m["hq_fraction"])
    mean = lambda name, i: statistics.fmean(stats[name][i])
    ours, plain, remedies = gan2d.ROWS[0][0], gan2d.ROWS[2][0], [r[0] for r in gan2d.ROWS[3:]]
    ok = mean(plain, 0) < 7 and max(mean(r, 0) for r in remedies) >= 7.8 and mean(ours, 0) >= 7.8 \
        and mean(ours, 1) >= 0.9
    fmt = lambda name: f"{fmt_mean_se(stats[name][0])} / 8 modes, {fmt_mean_se(stats[name][1], 1, 100)}% HQ"
    return Verdict("PASS" if ok else "FAIL",
                   f"ring8, {len(seeds)} seeds. {plain}: {fmt(plain)}; " +
                   "; ".join(f"{r}: {fmt(r)}" for r in remedies) + f"; ours (the defaults): {fmt(ours)}. "
                   "Rule: the plain GAN < 7 modes, a remedy in the same setting >= 7.8, and the defaults >= 7.8 "
                   "modes with >= 90% high quality",
                   "6,000 generator steps per run (the gan2d suite's runs)",
                   f"[plain](benchmarks/results/gan2d_ring8_{gan2d.slug(plain)}.png), "
                   f"[ours](benchmarks/results/gan2d_ring8_{gan2d.slug(ours)}.png)")


def neighbours(quick: bool) -> Verdict:
    from latentlab.api import load_run
    from latentlab.eval.retrieval import retrieval_eval
    seeds = [0] if quick else [0, 1, 2]
    feat, pix = [], []
    for s in seeds:
        out = OUT / "claims" / f"supervised-mnist_m-{s}"
        train_run("supervised", out, dataset="mnist_m", data_dir=data_dir(), seed=s, image_every=0,
                  max_seconds=3 if quick else 60, steps=100000, eval_at_end=False)
        r = retrieval_eval(load_run(out, {"data_dir": data_dir()}), n_gallery=2000 if quick else 10000,
                           n_query=200 if quick else 1000)
        feat.append(r.metrics["feature_map"])
        pix.append(r.metrics["pixel_map"])
    ok = beyond_noise(feat, pix) if len(seeds) > 1 else feat[0] > pix[0]
    return Verdict("PASS" if ok else "FAIL",
                   f"MNIST-M, 1,000 test queries vs 10,000 train images, L2, relevant = same class: mAP "
                   f"{fmt_mean_se(feat, 3)} with the ConvNet's penultimate features vs {fmt_mean_se(pix, 3)} with raw pixels "
                   "(rule: feature mAP above pixel mAP beyond 2 s.e.)",
                   f"supervised ConvNet, 60 s of training per seed, seeds {seeds[0]}-{seeds[-1]}",
                   "[panel](benchmarks/results/inspect_retrieval_mnist_m.png)")


# -- claims whose evidence is a suite's measured table -------------------------------------------

def ssl_beats_untrained(quick: bool) -> Verdict:
    d = _suite_json("ssl_claim")
    if d is None:
        return Verdict("NOT MEASURED", "run `python -m benchmarks.run ssl_claim`", "")
    rows, steps, longer = d["rows"], d["steps"], d["longer"]
    lin = lambda m, ds, n: [r["linear"] for r in rows if r["method"] == m and r["dataset"] == ds   # noqa: E731
                            and r["steps"] == n and r["views"] == d["views"].get(f"{ds}/{m}", "-")]
    lines, fails = [], []
    for ds in ("mnist", "mnist_m"):
        base = lin("untrained", ds, 1)
        best = max(steps, key=lambda m: statistics.fmean(lin(m, ds, steps[m])))
        lines.append(f"{ds}: untrained {fmt_mean_se(base, 1, 100)}%, best {best} {fmt_mean_se(lin(best, ds, steps[best]), 1, 100)}%")
        for m in steps:
            if not d["beyond_noise"][f"{ds}/{m}"]:
                txt = f"{m} on {ds} ({fmt_mean_se(lin(m, ds, steps[m]), 1, 100)}%"
                if f"{ds}/{m}" in d["above_untrained_longer"]:
                    ok = d["above_untrained_longer"][f"{ds}/{m}"]
                    txt += (f"; {longer}x the steps, seed 0: {fmt_mean_se(lin(m, ds, longer * steps[m]), 1, 100)}%, "
                            f"{'above' if ok else 'still not above'} the untrained mean + 2 s.e.")
                fails.append(txt + ")")
    seeds = sorted({r["seed"] for r in rows})
    return Verdict(d["verdict"],
                   "; ".join(lines) + ". Rule: every contrastive (SimCLR, MoCo, NPID, PIRL) and non-contrastive "
                   "(BYOL, Barlow Twins, DINO) method above the untrained encoder beyond 2 s.e., on MNIST and MNIST-M, "
                   "at the budget. " + (f"Not beyond noise at the budget: {', '.join(fails)}." if fails else ""),
                   f"ssl_claim suite (commit {SUITE_COMMIT.get('ssl_claim', '?')}): per method {min(steps.values())}-"
                   f"{max(steps.values())} steps (about 60 s of one core), seeds {', '.join(map(str, seeds))}; "
                   "every choice (MNIST-M views, probe weight decay) on validation")


def more_negatives(quick: bool) -> Verdict:
    d = _suite_json("ssl_k")
    if d is None:
        return Verdict("NOT MEASURED", "run `python -m benchmarks.run ssl_k`", "")
    rows, st = d["rows"], d["setting"]
    ks = sorted({r["K"] for r in rows})
    curve = ", ".join(f"K={k}: {fmt_mean_se([r['linear'] for r in rows if r['K'] == k], 1, 100)}%" for k in ks)
    seeds = sorted({r["seed"] for r in rows})
    diff = {int(k): v["linear"] for k, v in d["paired_vs_smallest"].items()}
    paired = ", ".join(f"K={k} {100 * v['mean']:.2f} ± {100 * v['se']:.2f}" for k, v in diff.items())
    above = ", ".join(f"K={k}" for k, v in diff.items() if v["beyond_noise"]) or "none"
    return Verdict(d["verdict"], f"MoCo v2 linear accuracy on {st['dataset'].upper().replace('_', '-')}: {curve}; minus "
                   f"K={ks[0]}, paired over seeds (points): {paired}. Rule: a rise beyond 2 s.e. from the smallest to "
                   f"the largest K, every queue refilled with real keys many times. Beyond noise above K={ks[0]}: "
                   f"{above}",
                   f"ssl_k suite (commit {SUITE_COMMIT.get('ssl_k', '?')}): {st['steps']} steps of {st['batch_size']} "
                   f"per run, seeds {', '.join(map(str, seeds))}", "[curve](benchmarks/results/ssl_k.png)")


def _gan_rows(name: str) -> list[dict] | None:
    d = _suite_json("gan_mnist")
    if d is None or "rows" not in d:
        return None
    return [r for r in d["rows"] if r["method"] == name] or None


def gan_digits(quick: bool) -> Verdict:
    rs = _gan_rows("dcgan")
    if rs is None:
        return Verdict("NOT MEASURED", "run `python -m benchmarks.run gan_mnist`", "")
    conf = [r["test"]["confident_fraction"] for r in rs]
    rec, fid = [r["test"]["recall"] for r in rs], [r["test"]["fid"] for r in rs]
    ok = mean_se(conf)[0] >= 0.8 and mean_se(rec)[0] >= 0.3
    peer = _gan_rows("PyTorch-GAN dcgan.py")
    vs = (f"; PyTorch-GAN's dcgan.py in the same time: FID {fmt_mean_se([r['test']['fid'] for r in peer], 0)}, "
          f"{fmt_mean_se([r['test']['confident_fraction'] for r in peer], 0, 100)}% read" if peer else "")
    longer = _suite_json("gan_long")
    if longer and "dcgan" in longer:
        c = longer["dcgan"]
        first = next((r for r in c if r["read"] >= 0.8), None)
        vs += (f"; trained longer (gan_long suite, seed 0): {100 * c[-1]['read']:.0f}% read after {c[-1]['seconds']:.0f} s"
               + (f", >= 80% first at {first['seconds']:.0f} s" if first else ", never >= 80% on the way"))
    return Verdict("PASS" if ok else "FAIL",
                   f"DCGAN on MNIST, {len(rs)} seeds: {fmt_mean_se(conf, 0, 100)}% of samples read by the classifier with "
                   f"confidence >= 0.9, recall {fmt_mean_se(rec, 2)}, test FID {fmt_mean_se(fid, 0)}{vs}. Rule: >= 80% and recall "
                   ">= 0.3 (means, at the gan_mnist budget)", f"gan_mnist suite (commit {SUITE_COMMIT.get('gan_mnist', '?')}), "
                   f"{rs[0]['seconds']:.0f} s per run", "[grid](benchmarks/results/gan_mnist/dcgan.png)")


def conditional(quick: bool) -> Verdict:
    parts, ok, n = [], True, 0
    for name in ("cgan", "acgan"):
        rs = _gan_rows(name)
        if rs is None:
            return Verdict("NOT MEASURED", "run `python -m benchmarks.run gan_mnist`", "")
        cc, rec = [r["test"]["class_consistency"] for r in rs], [r["test"]["recall"] for r in rs]
        ok &= mean_se(cc)[0] >= 0.9 and mean_se(rec)[0] >= 0.2
        n = len(rs)
        parts.append(f"{name}: {fmt_mean_se(cc, 1, 100)}% of samples classified as the requested class, recall {fmt_mean_se(rec, 2)}")
    return Verdict("PASS" if ok else "FAIL", "; ".join(parts) + f" ({n} seeds; rule: means >= 90% and recall >= 0.2 "
                   "for both)", f"gan_mnist suite (commit {SUITE_COMMIT.get('gan_mnist', '?')}), "
                   f"{_gan_rows('cgan')[0]['seconds']:.0f} s per run",
                   "[cgan](benchmarks/results/gan_mnist/cgan_classes.png), "
                   "[acgan](benchmarks/results/gan_mnist/acgan_classes.png)")


def _spearman(a: list[float], b: list[float]) -> float:
    rank = lambda xs: [sorted(xs).index(x) for x in xs]
    ra, rb = rank(a), rank(b)
    return statistics.correlation(ra, rb) if len(set(ra)) > 1 and len(set(rb)) > 1 else float("nan")


def wgan_critic(quick: bool) -> Verdict:
    """Each periodic checkpoint of the gan_mnist suite's wgan_gp runs: the critic's logged Wasserstein estimate
    (mean over the log window ending there) beside that generator's validation FID (2,048 samples)."""
    from pathlib import Path

    from latentlab.api import load_run
    rhos, n_ck = [], 0
    for run_dir in sorted((OUT / "gan_mnist").glob("wgan_gp_s*")):
        cks = sorted((run_dir / "checkpoints").glob("step_*.ckpt"))
        if not (run_dir / "result.json").is_file() or len(cks) < 4:
            continue
        cache = run_dir / "critic_vs_fid.json"
        if cache.is_file():
            pts = json.loads(cache.read_text())
        else:
            logs = {r["step"]: r for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
                    if "wasserstein_estimate" in r}
            pts = []
            for ck in cks:
                step = int(Path(ck).stem.split("_")[1])
                if step not in logs:
                    continue
                m = load_run(run_dir, checkpoint=ck)
                pts.append({"step": step, "w": logs[step]["wasserstein_estimate"], "fid": m.fid_or_kid(2048)[1]})
            cache.write_text(json.dumps(pts, indent=1) + "\n")
        if len(pts) >= 4:
            rhos.append(_spearman([p["w"] for p in pts], [p["fid"] for p in pts]))
            n_ck = len(pts)
    if not rhos:
        return Verdict("NOT MEASURED", "run `python -m benchmarks.run gan_mnist` (its wgan_gp runs keep periodic "
                       "checkpoints)", "")
    ok = min(rhos) >= 0.7
    return Verdict("PASS" if ok else "FAIL", f"WGAN-GP on MNIST: Spearman correlation between the critic's "
                   f"Wasserstein estimate and the generator's validation FID over {n_ck} checkpoints: "
                   + ", ".join(f"{r:.2f}" for r in rhos) + f" ({len(rhos)} seed(s)). Rule: >= 0.7 in every seed "
                   "(the estimate falls as FID falls)", f"gan_mnist suite (commit {SUITE_COMMIT.get('gan_mnist', '?')})",
                   "")


def tta_ensembles(quick: bool) -> Verdict:
    d = _suite_json("alexnet_recipe")
    if d is None:
        return Verdict("NOT MEASURED", "run `python -m benchmarks.run alexnet_recipe`", "")
    t, e = d["tta_gain"], d["ensemble_gain"]
    size = len(d["ensembles"][0]["seeds"])
    n_ens = sum(1 for x in d["ensembles"] if not x["tta"] and len(x["seeds"]) == size)
    ok = t["pass"] and e["pass"]
    return Verdict("PASS" if ok else "FAIL",
                   f"AlexNet-small on MNIST-M (paper recipe without LRN, {d['steps']} steps; {d.get('convergence', '')}): 10-view "
                   f"TTA {100 * t['mean']:+.2f} ± {100 * t['se']:.2f} points over {len(d['runs'])} models; ensembles "
                   f"of {size} {100 * e['mean']:+.2f} ± {100 * e['se']:.2f} over their members' mean ({n_ens} disjoint "
                   "ensembles). Rule: both gains above 0 beyond 2 s.e."
                   + ("" if d.get("converged") else " The models had not converged: these are the gains of models "
                      "still improving, which may shrink at convergence"),
                   f"alexnet_recipe suite (commit {SUITE_COMMIT.get('alexnet_recipe', '?')}), seeds 0-{len(d['runs']) - 1}")


def filters(quick: bool) -> Verdict:
    d = _suite_json("alexnet_recipe")
    if d is None:
        return Verdict("NOT MEASURED", "run `python -m benchmarks.run alexnet_recipe`", "")
    f, runs = d["filters"], d["runs"]
    cos = [r["filters"].get("cosine_to_init", float("nan")) for r in runs]
    frac = lambda key, which: fmt_mean_se([r[which][key] for r in runs], 0, 100)
    conv = "the models converged" if d.get("converged") else "the models had not converged"
    return Verdict("PASS" if f["pass"] else "FAIL",
                   f"AlexNet-small conv1 ({runs[0]['filters']['n_filters']} filters, {runs[0]['filters']['kernel']}x"
                   f"{runs[0]['filters']['kernel']}) on MNIST-M, trained vs initial: oriented edges "
                   f"{frac('edge_fraction', 'filters')}% vs {frac('edge_fraction', 'filters_init')}%, colour blobs "
                   f"{frac('blob_fraction', 'filters')}% vs {frac('blob_fraction', 'filters_init')}% "
                   "(`latentlab.eval.filters`: orientation selectivity >= 0.5; chromatic energy >= 0.5 and low-pass). "
                   "Rule: both fractions above the initial filters' beyond 2 s.e. Mean cosine of a trained conv1 filter "
                   f"with its initial value: {fmt_mean_se(cos, 2)}"
                   + (f" (much of the random initialisation stays in them; {conv})" if mean_se(cos)[0] > 0.5 else ""),
                   f"alexnet_recipe suite (commit {SUITE_COMMIT.get('alexnet_recipe', '?')}), seeds 0-{len(runs) - 1}",
                   "[filters](benchmarks/results/alexnet_recipe_filters.png)")


def _mean_acc(rows, label):
    return [(r["left"] + r["right"]) / 2 for r in rows if r["label"] == label]


def mgda_beats_uniform(quick: bool) -> Verdict:
    d = _suite_json("multitask")
    if d is None:
        return Verdict("NOT MEASURED", "run `python -m benchmarks.run multitask`", "")
    m, u = _mean_acc(d["rows"], "MGDA-UB (Sener & Koltun)"), _mean_acc(d["rows"], "uniform scaling")
    s = _mean_acc(d["rows"], "single task")
    ok = beyond_noise(m, u)
    return Verdict("PASS" if ok else "FAIL",
                   f"MultiMNIST mean accuracy of the two digits (test, checkpoint chosen on validation): MGDA-UB "
                   f"{fmt_mean_se(m, 2)}%, uniform scaling {fmt_mean_se(u, 2)}%, single-task networks "
                   f"{fmt_mean_se(s, 2)}% ({d['steps']} steps of 256). Rule: MGDA-UB above uniform beyond 2 s.e.",
                   f"multitask suite (commit {SUITE_COMMIT.get('multitask', '?')}), seeds 0-{len(d['seeds']) - 1}",
                   "[bars](benchmarks/results/multitask.png)")


def negative_transfer(quick: bool) -> Verdict:
    d = _suite_json("taskonomy")
    if d is None:
        return Verdict("NOT MEASURED", "run `python -m benchmarks.run taskonomy`", "")
    neg = d["negative"]
    hurt, helped = [], []
    for r in neg["rows"]:
        for t in neg["pair"]:
            j, a = r[t]["joint"], r[t]["alone"]
            where = f"{t} (x{r['f']:g}, split {r['split']}: {fmt_mean_se(j, 2)} vs {fmt_mean_se(a, 2)} alone)"
            (hurt if beyond_noise(j, a) else helped if beyond_noise(a, j) else []).append(where)
    return Verdict("PASS" if hurt else "FAIL",
                   f"pair {' + '.join(neg['pair'])} of digit_tasks (chosen on validation), test error joint vs alone: "
                   f"worse beyond noise for {'; '.join(hurt) or 'none'}; better for {'; '.join(helped) or 'none'}. "
                   "Rule: some member of the pair worse jointly than alone beyond 2 s.e.",
                   f"taskonomy suite (commit {SUITE_COMMIT.get('taskonomy', '?')}), seeds 0-{len(d['seeds']) - 1}")


def grouping_wins(quick: bool) -> Verdict:
    d = _suite_json("taskonomy")
    if d is None:
        return Verdict("NOT MEASURED", "run `python -m benchmarks.run taskonomy`", "")
    lay = d["grouping"]["layouts"]
    chosen = next(v for k, v in lay.items() if k.startswith("chosen"))
    one, sep = lay["all-in-one (1 network)"], lay["all separate (4 networks)"]
    ok = beyond_noise(one["total_rel"], chosen["total_rel"]) and beyond_noise(sep["total_rel"], chosen["total_rel"])
    return Verdict("PASS" if ok else "FAIL",
                   f"total test error relative to single-task networks (4 tasks): chosen "
                   f"{' / '.join('+'.join(g) for g in chosen['groups'])} {fmt_mean_se(chosen['total_rel'], 2)}, "
                   f"all-in-one {fmt_mean_se(one['total_rel'], 2)}, all separate {fmt_mean_se(sep['total_rel'], 2)} at "
                   "equal compute. Rule: the chosen grouping below both beyond 2 s.e.",
                   f"taskonomy suite (commit {SUITE_COMMIT.get('taskonomy', '?')}), seeds 0-{len(d['seeds']) - 1}",
                   "[affinities](benchmarks/results/taskonomy_affinity.png)")


def transfer_fewer_labels(quick: bool) -> Verdict:
    from . import transfer
    d = _suite_json("transfer")
    if d is None:
        return Verdict("NOT MEASURED", "run `python -m benchmarks.run transfer`", "")
    ok, evidence = transfer.claim(d)
    return Verdict("PASS" if ok else "FAIL", evidence,
                   f"transfer suite (commit {SUITE_COMMIT.get('transfer', '?')}), seeds 0-{len(d['seeds']) - 1}",
                   "[curves](benchmarks/results/transfer_mnist_m.png)")


def pose_multitask(quick: bool) -> Verdict:
    from . import pose
    d = _suite_json("pose")
    if d is None:
        return Verdict("NOT MEASURED", "run `python -m benchmarks.run pose`", "")
    ok, evidence = pose.claim(d)
    return Verdict("PASS" if ok else "FAIL", evidence,
                   f"pose suite (commit {SUITE_COMMIT.get('pose', '?')}), seeds 0-{len(d['seeds']) - 1}",
                   "[examples](benchmarks/results/pose_examples.png)")


def adaptation_helps(quick: bool) -> Verdict:
    from . import domain_adaptation as da
    d = _suite_json("domain_adaptation")
    if d is None:
        return Verdict("NOT MEASURED", "run `python -m benchmarks.run domain_adaptation`", "")
    ok, evidence = da.claim(d)
    return Verdict("PASS" if ok else "FAIL", evidence,
                   f"domain_adaptation suite (commit {SUITE_COMMIT.get('domain_adaptation', '?')}), seeds "
                   f"{', '.join(map(str, d['seeds']))}",
                   "[t-SNE](benchmarks/results/da_tsne_mnist2mnist_m_dann.png)")


def egomotion_few_labels(quick: bool) -> Verdict:
    from . import egomotion
    d = _suite_json("egomotion")
    if d is None:
        return Verdict("NOT MEASURED", "run `python -m benchmarks.run egomotion`", "")
    ok, evidence = egomotion.claim(d)
    return Verdict("PASS" if ok else "FAIL", evidence,
                   f"egomotion suite (commit {SUITE_COMMIT.get('egomotion', '?')}), seeds "
                   f"{', '.join(map(str, d['seeds']))}", "[curves](benchmarks/results/egomotion_curves.png)")


def temporal_order_generalises(quick: bool) -> Verdict:
    from . import egomotion
    d = _suite_json("egomotion")
    if d is None:
        return Verdict("NOT MEASURED", "run `python -m benchmarks.run egomotion`", "")
    ok, evidence = egomotion.order_goal(d)
    return Verdict("PASS" if ok else "FAIL", evidence + ". Rule: mean held-out accuracy >= 80%",
                   f"egomotion suite (commit {SUITE_COMMIT.get('egomotion', '?')}), seeds "
                   f"{', '.join(map(str, d['seeds']))}")


def not_measured(what: str):
    return lambda quick: Verdict("NOT MEASURED", what, "")


CLAIMS = [  # (the lecture's words, anchor, check)
    ("First-layer filters are oriented edges and colour blobs", "Krizhevsky et al. 2012, Fig. 3",
     filters),
    ("Neighbours in feature space are semantically closer than neighbours in pixel space",
     "Krizhevsky et al. 2012, Fig. 4", neighbours),
    ("The 1-D GAN's θ converges to the data mean", "Goodfellow et al. 2014, Fig. 1", gan1d_theta),
    ("The vanilla GAN drops modes; the remedy recovers them", "Metz et al. 2017 Fig. 1; PacGAN / VEEGAN tables",
     gan2d_modes),
    ("DCGAN draws recognisable digits", "Radford et al. 2016, Fig. 1-3", gan_digits),
    ("WGAN's critic estimate falls as samples improve", "Arjovsky et al. 2017, Fig. 3",
     wgan_critic),
    ("Conditional GANs draw the requested class", "Mirza & Osindero 2014; Odena et al. 2017", conditional),
    ("More negatives K is better", "Wu et al. 2018 Fig. 3; He et al. 2020 Fig. 3", more_negatives),
    ("Self-supervised features beat untrained ones", "the DINO table of methods (linear probe)", ssl_beats_untrained),
    ("Test-time augmentation and ensembles help", "Krizhevsky et al. 2012: 40.7% -> 38.1% top-1 error (5 CNNs)",
     tta_ensembles),
    ("A reused representation needs fewer target labels", "Yosinski et al. 2014; the lecture's transfer slide",
     transfer_fewer_labels),
    ("Multi-task learning can hurt: negative transfer", "Standley et al. 2020 (pairs that hurt)", negative_transfer),
    ("Learning the right tasks together beats one network for all and one per task",
     "Standley et al. 2020 (chosen groupings)", grouping_wins),
    ("MGDA-UB beats uniform scaling on MultiMNIST", "Sener & Koltun 2018, Table 3: 97.26 / 95.90 vs 96.46 / 94.99",
     mgda_beats_uniform),
    ("Landmarks learned with pose and visibility are more accurate", "Valle et al. 2021 via the lecture: NME 2.54 -> 2.24",
     pose_multitask),
    ("Adversarial features adapt a classifier to an unlabelled domain", "Ganin et al. 2016, Table 2: MNIST -> MNIST-M "
     "52.25 -> 76.66", adaptation_helps),
    ("Predicting one's own motion teaches features that need fewer labels", "Agrawal et al. 2015 (MNIST, qualitative)",
     egomotion_few_labels),
    ("Temporal order can be verified on unseen clips", "Misra et al. 2016 (the pretext task)",
     temporal_order_generalises),
]


def run(quick: bool = False) -> str:
    rows, raw = [], {}
    for words, anchor, check in CLAIMS:
        v = check(quick)
        raw[words] = v.__dict__
        rows.append([words, v.evidence + (f" {v.picture}" if v.picture else ""), anchor, v.budget, f"**{v.verdict}**"])
    save_json("claims", raw)
    n = {k: sum(r[-1] == f"**{k}**" for r in rows) for k in ("PASS", "FAIL", "NOT MEASURED")}
    body = (f"{n['PASS']} PASS, {n['FAIL']} FAIL, {n['NOT MEASURED']} NOT MEASURED of {len(rows)} claims.\n\n"
            + table(["claim (the lecture's words)", "evidence", "anchor", "budget, seeds", "verdict"], rows))
    notes = (f"Spread: {SPREAD} Every choice inside an experiment (probe weight decay, checkpoint) is made on a "
             "validation split held out from train, never on test; the image GANs' recipes were chosen on the "
             "validation FID and the self-supervised row's views on the validation linear accuracy (ssl_claim; "
             "earlier self-supervised rounds that chose on test are listed in docs/ssl.md). Evidence taken from another suite names "
             "that suite and the commit it was measured at.")
    return section("The lecture's claims", "python -m benchmarks.run claims", "per claim, in its row",
                   "per claim, in its row", body, notes)


def headline() -> tuple[str, str] | None:
    """(verdicts, anchor) for BENCHMARKS.md's headline, from results/claims.json."""
    d = load_json("claims")
    if not d:
        return None
    n = {k: sum(v["verdict"] == k for v in d.values()) for k in ("PASS", "FAIL", "NOT MEASURED")}
    return (f"{n['PASS']} PASS, {n['FAIL']} FAIL, {n['NOT MEASURED']} NOT MEASURED of {len(d)} claims",
            "each claim's paper, in its row")
