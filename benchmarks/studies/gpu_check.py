"""Every registered method on a CUDA device, under each Fabric precision: does it train, are its losses finite?

The CPU machine that runs the tests has no GPU, so the CUDA paths (device placement, autocast, the
16-mixed gradient scaler, cuDNN kernels, channels_last on the GPU) are checked here, on a lent GPU
machine. Each method trains its default configuration (``eval_at_end=false``, the SSL k-NN monitor off)
for a few steps; a cell shows the last logged loss, or the error. Needs CUDA: skipped elsewhere.
"""

from __future__ import annotations

import math

import torch

from ..common import OUT, SkipSuite, data_dir, save_json, section, table, train_run

PRECISIONS = ("32-true", "bf16-mixed", "16-mixed", "64-true")
STEPS = 6
DEVICE = "cuda"
# datasets in ../shared/data: the image methods on MNIST (AlexNet's default MNIST-M is not needed here)
DATASET = {"alexnet": "mnist", "supervised": "mnist"}


def _losses(run_dir) -> list[dict]:
    from latentlab.engine.logging import read_metrics
    return [{k: v for k, v in r.items() if k.startswith("loss")} for r in read_metrics(run_dir) if "kind" not in r]


def run(quick: bool = False) -> str:
    if DEVICE == "cuda" and not torch.cuda.is_available():
        raise SkipSuite("needs a CUDA device")
    from latentlab.methods import METHODS
    from latentlab.methods._ssl import SSLMethod
    steps = 2 if quick else STEPS
    raw: dict = {}
    for name in sorted(METHODS):
        raw[name] = {}
        kw = dict(device=DEVICE, steps=steps, log_every=1, ckpt_every=0, image_every=0, eval_at_end=False,
                  data_dir=data_dir())
        if name in DATASET:
            kw["dataset"] = DATASET[name]
        if issubclass(METHODS[name], SSLMethod):
            kw["knn_every"] = 0
        for prec in PRECISIONS:
            try:
                r = train_run(name, OUT / "gpu_check" / f"{name}-{prec}", precision=prec, reuse=False, **kw)
                losses = _losses(r.run_dir)
                finite = all(math.isfinite(v) for row in losses for v in row.values())
                raw[name][prec] = {"ok": finite and r.steps == steps, "steps": r.steps, "last": losses[-1]}
            except Exception as e:                       # noqa: BLE001 - the table reports it
                raw[name][prec] = {"ok": False, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"}
            print(f"  {name:<15} {prec:<10} {raw[name][prec]}", flush=True)
    save_json("gpu_check", raw)

    def cell(r):
        if "error" in r:
            return f"error: {r['error']}"
        loss = ", ".join(f"{k} {v:.3g}" for k, v in r["last"].items())
        return ("ok" if r["ok"] else "NON-FINITE") + f" ({loss})"
    rows = [[n, *(cell(raw[n][p]) for p in PRECISIONS)] for n in raw]
    n_ok = sum(r["ok"] for n in raw for r in raw[n].values())
    notes = (f"{n_ok} of {len(raw) * len(PRECISIONS)} method x precision runs trained {steps} steps with finite losses. "
             f"Each method's default configuration (image methods on MNIST, the SSL k-NN monitor off, no "
             f"final evaluation), one process, `device=cuda`; a cell gives the last step's logged losses. "
             f"GPU: {torch.cuda.get_device_name() if DEVICE == 'cuda' else 'none'}, CUDA {torch.version.cuda}.")
    return section("GPU check: every method under every precision", "python -m benchmarks.run studies.gpu_check",
                   f"{steps} steps per run", "0", table(["method", *PRECISIONS], rows), notes)
