"""Run one of PyTorch-GAN's published scripts as it is, for a fixed wall time, then sample its generator.

Runs in a separate virtual environment that has torchvision (the project never imports it):

    python benchmarks/peer/pytorch_gan_runner.py SCRIPT SECONDS OUT.npz [--seed S] [--samples N] [-- ARGS]

Nothing of the peer's code is copied or edited. The script is compiled and executed unchanged in a scratch
working directory whose ``../../data/mnist`` (the script's own data root) holds torchvision's MNIST layout
with the offline MNIST files, so the script's ``datasets.MNIST(..., download=True)`` finds them and
downloads nothing. The only interventions are the stop and the sampling:

- stop: ``SECONDS`` after the script's first training batch is drawn, an alarm raises ``_Stop`` inside the
  script; everything before the first batch (imports, building the networks, reading MNIST) is not counted;
- steps: each batch the script prints (``[Epoch ...] [Batch ...]``) is one G and one D update;
- sampling: the script's module-level ``generator`` and ``opt`` are read from its globals; ``SAMPLES`` images
  from its own prior (``N(0, I)`` in ``opt.latent_dim`` dimensions) are written to OUT.npz as uint8
  (N, C, H, W), once with BatchNorm in training mode (as the script's own sample grids are made, in chunks of
  ``opt.batch_size``) and once in eval mode (running statistics). The scoring side picks one on validation.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path


class _Stop(BaseException):
    """Raised inside the peer script when its time is up (BaseException: no ``except Exception`` eats it)."""


class _Counter:
    """stdout wrapper that counts the script's per-batch lines and starts the clock on the first."""

    def __init__(self, stream, seconds: float, log):
        self.stream, self.seconds, self.log = stream, seconds, log
        self.batches, self.t0 = 0, None

    def write(self, s):
        self.log.write(s)
        if s.startswith("[Epoch"):
            self.batches += 1
            if self.t0 is None:                          # first batch done: arm the stop
                self.t0 = time.perf_counter()
                signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return len(s)

    def flush(self):
        self.log.flush()


def mnist_root(work: Path, data_dir: Path) -> None:
    """``work/data/mnist/MNIST/raw`` with links to the offline MNIST files (torchvision's layout)."""
    raw = work / "data" / "mnist" / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for f in (data_dir / "mnist").glob("*-ubyte.gz"):
        if not (raw / f.name).exists():
            os.symlink(f, raw / f.name)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("script")
    p.add_argument("seconds", type=float)
    p.add_argument("out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--samples", type=int, default=5000)
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[3] / "shared" / "data"))
    p.add_argument("--work", default=None, help="scratch directory (default: next to OUT, removed after)")
    a, rest = p.parse_known_args()
    rest = rest[1:] if rest[:1] == ["--"] else rest

    import numpy as np
    import torch

    script = Path(a.script).resolve()
    out = Path(a.out).resolve()
    work = Path(a.work) if a.work else out.parent / (out.stem + "_work")
    run_dir = work / "a" / "b"                           # the script reads ../../data/mnist and writes images/
    run_dir.mkdir(parents=True, exist_ok=True)
    mnist_root(work, Path(a.data))
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)

    def stop(*_):
        raise _Stop

    signal.signal(signal.SIGALRM, stop)
    log = open(out.with_suffix(".log"), "w")
    counter = _Counter(sys.stdout, a.seconds, log)
    g = {"__name__": "__main__", "__file__": str(script)}
    argv, cwd, real_stdout = sys.argv, os.getcwd(), sys.stdout
    sys.argv, sys.stdout = [str(script), *rest], counter
    os.chdir(run_dir)
    try:
        exec(compile(script.read_text(), str(script), "exec"), g)
        finished = True                                  # the script ended by itself (its epochs ran out)
    except _Stop:
        finished = False
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        seconds = time.perf_counter() - counter.t0 if counter.t0 else 0.0
        sys.argv, sys.stdout = argv, real_stdout
        os.chdir(cwd)
        log.close()

    G, opt = g["generator"], g["opt"]
    gen = np.random.RandomState(10_000 + a.seed)        # evaluation noise, apart from the training stream
    z = torch.from_numpy(gen.normal(0, 1, (a.samples, opt.latent_dim)).astype(np.float32))
    images = {}
    with torch.no_grad():
        for mode in ("train", "eval"):
            G.train(mode == "train")
            xs = [G(z[i:i + opt.batch_size]) for i in range(0, len(z), opt.batch_size)]
            x = torch.cat(xs).clamp(-1, 1)               # tanh output in [-1, 1]
            images[f"bn_{mode}"] = ((x + 1) * 127.5).round().to(torch.uint8).numpy()
    np.savez_compressed(out, **images)
    meta = {"script": str(script), "args": rest, "seconds": seconds, "steps": counter.batches,
            "batch_size": opt.batch_size, "img_size": opt.img_size, "latent_dim": opt.latent_dim,
            "finished_by_itself": finished, "seed": a.seed, "torch": torch.__version__,
            "threads": torch.get_num_threads()}
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    if not a.work:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
