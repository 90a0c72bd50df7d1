"""Where a self-supervised training step spends its time on a GPU, and what a larger batch buys.

``gpu_speed`` found SSL steps of 30-90 ms on an H100 for 256 MNIST images, where the supervised step
takes 3 ms. This suite times, on MNIST-M, for the methods of ``ssl_gpu``, the part of a step that makes the views
(upload of the uint8 batch, then the kornia pipelines: ``SSLMethod.views``, with the device synchronised
before and after it) against the whole step, at batch 256 and 1024. Step times come from the difference
of a long and a short run, as in ``gpu_speed``. The synchronisation around the views adds a little to
the step time measured with it. Needs CUDA: skipped elsewhere.
"""

from __future__ import annotations

import time

import torch

from ..common import OUT, SkipSuite, data_dir, save_json, section, table, train_run

METHODS = ["simclr", "moco", "byol", "barlow_twins", "rotnet"]
BATCHES = (256, 1024)
SHORT, LONG = 10, 40
DEVICE = "cuda"


class _ViewClock:
    """Wraps ``SSLMethod.views``: the seconds spent in it, the device synchronised on both sides."""

    def __init__(self):
        from latentlab.methods._ssl import SSLMethod
        self.cls, self.orig, self.seconds = SSLMethod, SSLMethod.views, 0.0

    def _sync(self):
        if DEVICE == "cuda":
            torch.cuda.synchronize()

    def __enter__(self):
        clock = self

        def views(method, *a, **kw):
            clock._sync()
            t = time.perf_counter()
            out = clock.orig(method, *a, **kw)
            clock._sync()
            clock.seconds += time.perf_counter() - t
            return out
        self.cls.views = views
        return self

    def __exit__(self, *exc):
        self.cls.views = self.orig


def _measure(name: str, batch: int, short: int, long: int) -> dict:
    kw = dict(device=DEVICE, log_every=10, ckpt_every=0, image_every=0, eval_at_end=False, knn_every=0,
              data_dir=data_dir(), dataset="mnist_m", batch_size=batch,
              augment="digits_strong")
    times, view_s = [], []
    for steps in (short, long):
        with _ViewClock() as clock:
            r = train_run(name, OUT / "gpu_profile" / f"{name}-b{batch}-{steps}", steps=steps, reuse=False, **kw)
        times.append(r.seconds)
        view_s.append(clock.seconds)
    n = long - short
    step_ms, view_ms = 1000 * (times[1] - times[0]) / n, 1000 * (view_s[1] - view_s[0]) / n
    return {"ms_step": step_ms, "ms_views": view_ms, "views_share": view_ms / step_ms, "im_s": batch / step_ms * 1000}


def run(quick: bool = False) -> str:
    if DEVICE == "cuda" and not torch.cuda.is_available():
        raise SkipSuite("needs a CUDA device")
    short, long = (2, 4) if quick else (SHORT, LONG)
    batches = (32, 64) if quick else BATCHES
    _measure(METHODS[0], batches[0], short, long)      # warm-up: CUDA context, cuDNN, first allocations
    raw: dict = {}
    for name in METHODS:
        raw[name] = {}
        for b in batches:
            raw[name][b] = _measure(name, b, short, long)
            print(f"  {name:<13} batch {b:<5} {raw[name][b]}", flush=True)
    save_json("gpu_profile", raw)
    rows = []
    for name in METHODS:
        lo, hi = raw[name][batches[0]], raw[name][batches[1]]
        rows.append([name, *(f"{r['ms_step']:.1f} ({r['ms_views']:.1f}, {100 * r['views_share']:.0f}%)" for r in (lo, hi)),
                     *(f"{r['im_s']:,.0f}" for r in (lo, hi)), f"{hi['im_s'] / lo['im_s']:.2f}x"])
    gpu = torch.cuda.get_device_name() if DEVICE == "cuda" else "none"
    notes = (f"Default configuration of each method (ConvNet) on 32 px MNIST-M with `augment=digits_strong` as in `ssl_gpu`, float32, channels_last, "
             f"one process, `device={DEVICE}`, the k-NN monitor off. ms/step from the difference of a {long}-step "
             f"and a {short}-step run; in brackets the part spent making the views (uint8 batch to the device, "
             f"then the kornia pipelines; device synchronised around it) and its share of the step. "
             f"GPU: {gpu}, CUDA {torch.version.cuda}, torch {torch.__version__}.")
    return section("Where an SSL step's time goes on a GPU (views vs the rest)",
                   "python -m benchmarks.run studies.gpu_profile", f"{long - short} timed steps per run", "0",
                   table(["method", f"ms/step at batch {batches[0]} (views)", f"ms/step at batch {batches[1]} (views)",
                          f"im/s at {batches[0]}", f"im/s at {batches[1]}", "speed-up"], rows), notes)
