"""Training images/s on a CUDA device, per method, in float32 and in bf16 autocast (``bf16-mixed``).

Each method trains its default configuration on MNIST twice, for ``SHORT`` and ``LONG`` steps; images/s
is ``(LONG - SHORT) * batch / (t_LONG - t_SHORT)``, so start-up (cuDNN autotuning, first allocations) is
not counted. Images are counted as in the ssl suite: one per batch element (a method that encodes
several views of it does that work inside the step). Needs CUDA: skipped elsewhere.
"""

from __future__ import annotations

import statistics

import torch

from ..common import OUT, SkipSuite, data_dir, save_json, section, table, train_run
from ..ssl import METHODS as SSL

METHODS = ["supervised", *SSL, "dcgan", "wgan_gp"]
PRECISIONS = ("32-true", "bf16-mixed")
SHORT, LONG = 20, 120
DEVICE = "cuda"


def _rate(name: str, prec: str, short: int, long: int) -> dict:
    from benchmarks.common import run_cfg
    kw = dict(device=DEVICE, precision=prec, log_every=10, ckpt_every=0, image_every=0, eval_at_end=False,
              data_dir=data_dir(), dataset="mnist", **({"knn_every": 0} if name in SSL else {}))
    a = train_run(name, OUT / "gpu_speed" / f"{name}-{prec}-a", steps=short, reuse=False, **kw)
    b = train_run(name, OUT / "gpu_speed" / f"{name}-{prec}-b", steps=long, reuse=False, **kw)
    bs = run_cfg(b.run_dir).batch_size
    return {"batch_size": bs, "im_s": (long - short) * bs / (b.seconds - a.seconds),
            "ms_step": 1000 * (b.seconds - a.seconds) / (long - short)}


def run(quick: bool = False) -> str:
    if DEVICE == "cuda" and not torch.cuda.is_available():
        raise SkipSuite("needs a CUDA device")
    short, long = (2, 6) if quick else (SHORT, LONG)
    _rate(METHODS[0], PRECISIONS[0], short, long)      # warm-up: CUDA context, cuDNN, first allocations
    raw = {}
    for name in METHODS:
        raw[name] = {}
        for prec in PRECISIONS:
            raw[name][prec] = _rate(name, prec, short, long)
            print(f"  {name:<15} {prec:<10} {raw[name][prec]}", flush=True)
    save_json("gpu_speed", raw)
    rows = [[n, raw[n]["32-true"]["batch_size"], *(f"{raw[n][p]['im_s']:,.0f}" for p in PRECISIONS),
             *(f"{raw[n][p]['ms_step']:.1f}" for p in PRECISIONS),
             f"{raw[n]['bf16-mixed']['im_s'] / raw[n]['32-true']['im_s']:.2f}x"] for n in METHODS]
    ratio = statistics.median(raw[n]["bf16-mixed"]["im_s"] / raw[n]["32-true"]["im_s"] for n in METHODS)
    notes = (f"Default configuration of each method (ConvNet backbones, 28 px MNIST), one process, "
             f"`device=cuda`, channels_last on; the SSL k-NN monitor off. images/s from the difference of a "
             f"{long}-step and a {short}-step run. Median bf16 / fp32 speed ratio over the methods: {ratio:.2f}x. "
             f"GPU: {torch.cuda.get_device_name() if DEVICE == 'cuda' else 'none'}, CUDA {torch.version.cuda}, torch {torch.__version__}.")
    return section("GPU training speed per method", "python -m benchmarks.run studies.gpu_speed",
                   f"{long - short} timed steps per run", "0",
                   table(["method", "batch", "im/s fp32", "im/s bf16-mixed", "ms/step fp32", "ms/step bf16-mixed",
                          "bf16 / fp32"], rows), notes)
