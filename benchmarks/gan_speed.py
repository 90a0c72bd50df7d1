"""DCGAN step speed on this CPU: share of the fp32 matmul peak, engine overhead, torch.compile, eval time.

    PYTHONPATH=src:. python -m benchmarks.run gan_speed

- peak: the best of several 2048 x 2048 fp32 matmuls on all threads (GFLOP/s);
- a DCGAN step (one D update, one G update on the same fakes, as ``methods/dcgan.py``) in a bare PyTorch
  loop: its FLOPs counted by ``torch.utils.flop_counter`` (forward + backward of both networks), its time
  per step (median of interleaved repetitions), hence GFLOP/s and the share of the peak; with and without
  channels_last, eager and ``torch.compile`` (compile time excluded: warm-up steps first);
- the engine: the same step through ``latentlab train dcgan`` (logging, EMA off, no checkpoints in the
  loop), its time per step against the bare loop's;
- evaluation: the wall time of ``latentlab eval RUN`` in a fresh process (5,000 samples, every metric),
  on a run of the gan_mnist suite, and of ``method.evaluate()`` alone.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

import torch

from .common import OUT, RESULTS, ROOT, data_dir, md_table, section, table, train_run

WIDTHS = [(32, 32), (64, 64)]           # (ngf, ndf): the default and the paper-like width
BATCH, STEPS, REPEATS, WARMUP = 128, 40, 5, 8   # STEPS a multiple of WARMUP (the engine's log points)


def matmul_peak(n: int = 2048, reps: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9


def make(ngf: int, ndf: int, channels_last: bool, compile: bool):
    from latentlab import nets
    from latentlab.losses import discriminator_loss_minimax, generator_loss_nonsaturating
    torch.manual_seed(0)
    G = nets.create("dcgan_generator", z_dim=100, img_size=28, channels=1, ngf=ngf)
    D = nets.create("dcgan_discriminator", img_size=28, channels=1, ndf=ndf, norm="batch")
    if channels_last:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    oG = torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.0, 0.99))
    oD = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.0, 0.99))
    fG, fD = (torch.compile(G, dynamic=False), torch.compile(D, dynamic=False)) if compile else (G, D)
    x = torch.rand(BATCH, 1, 28, 28) * 2 - 1
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)

    def step():
        fake = fG(torch.randn(BATCH, 100))
        ld = discriminator_loss_minimax(fD(x), fD(fake.detach()))
        oD.zero_grad(set_to_none=True)
        ld.backward()
        oD.step()
        lg = generator_loss_nonsaturating(fD(fake))
        oG.zero_grad(set_to_none=True)
        lg.backward()
        oG.step()
        return ld.item(), lg.item()
    return step


def step_flops(ngf: int, ndf: int) -> float:
    from torch.utils.flop_counter import FlopCounterMode
    step = make(ngf, ndf, False, False)
    with FlopCounterMode(display=False) as fc:
        step()
    return fc.get_total_flops()


def bare_time(step, steps: int) -> float:
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t) / steps


def engine_time(ngf: int, ndf: int, steps: int) -> float:
    """Seconds per step of ``latentlab train dcgan`` after its first ``WARMUP`` steps: the wall time the
    engine logs at step WARMUP and at the last step (so start-up, data loading and warm-up are excluded,
    as in the bare loop's measurement)."""
    from latentlab.engine.logging import read_metrics
    out = OUT / "gan_speed" / f"engine_{ngf}_{ndf}"
    train_run("dcgan", out, reuse=False, dataset="mnist", steps=steps + WARMUP, ngf=ngf, ndf=ndf, batch_size=BATCH,
              log_every=WARMUP, ckpt_every=0, image_every=0, eval_at_end=False, channels_last=True,
              data_dir=data_dir())
    t = {r["step"]: r["elapsed_s"] for r in read_metrics(out) if "elapsed_s" in r}
    return (t[steps + WARMUP] - t[WARMUP]) / steps


def eval_times(run_dir) -> tuple[float, float]:
    """(latentlab eval RUN in a fresh process, s; method.evaluate() alone, s)."""
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "latentlab.cli", "eval", str(run_dir), "--json"], check=True,
                   stdout=subprocess.DEVNULL, cwd=ROOT)
    cli = time.perf_counter() - t
    from latentlab.api import load_run
    m = load_run(run_dir)
    t = time.perf_counter()
    m.evaluate()
    return cli, time.perf_counter() - t


def run(quick: bool = False) -> str:
    steps, reps = (WARMUP, 1) if quick else (STEPS, REPEATS)
    peak = matmul_peak(1024 if quick else 2048, 3 if quick else 10)
    rows = []
    for ngf, ndf in WIDTHS:
        flops = step_flops(ngf, ndf)
        variants = {(cl, comp): make(ngf, ndf, cl, comp) for cl in (True, False) for comp in (False, True)
                    if not (quick and comp)}
        for s in variants.values():
            for _ in range(2 if quick else WARMUP):          # compile and allocator warm-up, not timed
                s()
        times = {k: [] for k in variants}
        eng = []
        for _ in range(reps):                                # interleaved: machine noise hits each alike
            for k, s in variants.items():
                times[k].append(bare_time(s, steps))
            eng.append(engine_time(ngf, ndf, steps))
        med = {k: statistics.median(v) for k, v in times.items()}
        e = statistics.median(eng)
        for (cl, comp), t in med.items():
            rows.append([f"{ngf} / {ndf}", "channels_last" if cl else "NCHW", "compiled" if comp else "eager",
                         f"{flops / 1e9:.2f}", f"{1000 * t:.1f}", f"{flops / t / 1e9:.1f}", f"{100 * flops / t / 1e9 / peak:.0f}%",
                         f"{e / t:.3f}" if cl and not comp else "–"])
    body = table(["ngf / ndf", "memory format", "mode", "GFLOP / step", "ms / step (median)", "GFLOP/s",
                  "share of matmul peak", "engine / bare"], rows)
    body += f"\n\nfp32 matmul peak of this machine ({torch.get_num_threads()} threads): **{peak:.0f} GFLOP/s**."
    run_dir = OUT / "gan_mnist" / "dcgan_s0"
    if (run_dir / "checkpoints" / "last.ckpt").is_file() and not quick:
        cli, ev = eval_times(run_dir)
        body += (f"\n\nEvaluation of a trained dcgan run (5,000 samples; FID, KID, precision/recall, density/coverage, "
                 f"class statistics): `latentlab eval RUN` **{cli:.1f} s** in a fresh process (imports, loading the "
                 f"data and the feature network included), `evaluate()` alone {ev:.1f} s. Goal: <= 10 s: "
                 f"**{'met' if cli <= 10 else 'not met'}**.")
    notes = (f"A step: batch {BATCH} of 28 px MNIST-shaped inputs, G(z) once, D on reals and detached fakes, Adam on "
             "D, D on the fakes again, Adam on G (methods/dcgan.py's order). FLOPs counted by "
             "torch.utils.flop_counter.FlopCounterMode on one eager step (convolutions, transposed convolutions, "
             f"matmuls, forward and backward; BatchNorm, activations and Adam are not counted). {steps} steps per "
             f"measurement after {WARMUP} warm-up steps, {reps} interleaved repetitions, median. 'engine / bare': "
             f"`latentlab train dcgan` (channels_last, eager, no checkpoint in the loop) per step, timed between "
             f"the wall times it logs at step {WARMUP} and at the last step, over the bare channels_last eager loop; "
             "the engine's steps also draw real batches from MNIST.")
    return section("DCGAN step speed: share of matmul peak, engine overhead, compile, evaluation",
                   "PYTHONPATH=src:. python -m benchmarks.run gan_speed", f"{steps} steps × {reps} repetitions per variant",
                   "0", body, notes)


def headline() -> tuple[str, str] | None:
    """(the best share of the matmul peak and the engine's overhead, the peak), from results/gan_speed.md."""
    rows = md_table("gan_speed", "share of matmul peak")
    if not rows:
        return None
    best = max(rows, key=lambda r: float(r["share of matmul peak"].rstrip("%")))
    eng = [r["engine / bare"] for r in rows if r["engine / bare"] not in ("–", "")]
    peak = next((ln.split("**")[1] for ln in (RESULTS / "gan_speed.md").read_text().splitlines()
                 if ln.startswith("fp32 matmul peak") and "**" in ln), "?")
    return (f"DCGAN step at {best['share of matmul peak']} of the matmul peak ({best['ngf / ndf']}, "
            f"{best['memory format']}, {best['mode']}); engine / bare: {', '.join(eng)}",
            f"this CPU's fp32 matmul peak ({peak})")
