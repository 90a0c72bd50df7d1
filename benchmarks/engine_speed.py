"""The engine's time per step against a bare PyTorch loop doing the same work; channels_last images/s."""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F

from .common import OUT, data_dir, md_table, section, table, train_run

STEPS, BATCH, REPEATS = 300, 64, 3


def bare_loop(train, steps: int, channels_last: bool, seed: int = 0) -> float:
    """Plain PyTorch: the same ConvNet, Adam, batches and normalisation as `supervised`. Seconds/step."""
    from latentlab import nets
    from latentlab.engine.batches import ShuffledBatches
    torch.manual_seed(seed)
    c, h, _ = train.shape
    model = nets.create("convnet", in_chans=c, img_size=h, num_classes=10)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    stream = ShuffledBatches({"x": train.images, "y": train.labels}, BATCH, seed)
    t0 = time.perf_counter()
    for _ in range(steps):
        b = next(stream)
        x = b["x"].float().div_(255)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        logits = model(x)
        loss = F.cross_entropy(logits, b["y"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item(), (logits.argmax(1) == b["y"]).float().mean().item()  # the same logged values
    return (time.perf_counter() - t0) / steps


def engine_loop(steps: int, channels_last: bool) -> float:
    r = train_run("supervised", OUT / "engine_speed", dataset="mnist", steps=steps, batch_size=BATCH,
                  val_fraction=0.0, log_every=50, ckpt_every=0, image_every=0, eval_at_end=False,
                  channels_last=channels_last, data_dir=data_dir())
    return r.seconds / r.steps


def run(quick: bool = False) -> str:
    from latentlab.data import load_dataset
    steps, reps = (20, 1) if quick else (STEPS, REPEATS)
    train = load_dataset("mnist", "train", data_dir())
    bare_loop(train, 20, True)  # warm-up (allocator, kernels)
    res = {k: [] for k in ("bare", "engine", "bare_cf", "engine_cf")}
    for _ in range(reps):  # interleaved, so machine noise hits every variant alike
        res["bare"].append(bare_loop(train, steps, True))
        res["engine"].append(engine_loop(steps, True))
        res["bare_cf"].append(bare_loop(train, steps, False))
        res["engine_cf"].append(engine_loop(steps, False))
    med = {k: statistics.median(v) for k, v in res.items()}
    rows = [
        ["bare PyTorch loop", "channels_last", f"{1000 * med['bare']:.2f}", f"{BATCH / med['bare']:.0f}", "1.00"],
        ["latentlab engine", "channels_last", f"{1000 * med['engine']:.2f}", f"{BATCH / med['engine']:.0f}",
         f"{med['engine'] / med['bare']:.3f}"],
        ["bare PyTorch loop", "contiguous (NCHW)", f"{1000 * med['bare_cf']:.2f}", f"{BATCH / med['bare_cf']:.0f}", "1.00"],
        ["latentlab engine", "contiguous (NCHW)", f"{1000 * med['engine_cf']:.2f}", f"{BATCH / med['engine_cf']:.0f}",
         f"{med['engine_cf'] / med['bare_cf']:.3f}"],
    ]
    body = table(["loop", "memory format", "ms / step (median)", "images/s", "engine / bare"], rows)
    body += (f"\n\nchannels_last speed-up (bare loop): **{med['bare_cf'] / med['bare']:.2f}×**; "
             f"(engine): **{med['engine_cf'] / med['engine']:.2f}×**. Engine overhead target: ratio ≤ 1.05.")
    notes = (f"Work per step: `convnet` (conv 32, conv 64, FC 128, 10 classes) forward + backward + Adam on a batch of "
             f"{BATCH} MNIST images (uint8 → float on the fly), {steps} steps per measurement, {reps} interleaved "
             "repetitions, median reported. The engine run includes its metrics.jsonl/TensorBoard logging every 50 "
             "steps and the final checkpoint is excluded from the time (training loop only).")
    return section("Engine overhead and channels_last", "python -m benchmarks.run engine_speed",
                   f"{steps} steps × {reps} repetitions × 4 variants", "0", body, notes)


def headline() -> tuple[str, str] | None:
    """(the engine's time per step over the bare loop's, the bare loop), from results/engine_speed.md."""
    rows = md_table("engine_speed", "engine / bare")
    eng = [r for r in rows or [] if r["loop"] == "latentlab engine"]
    if not eng:
        return None
    return ("engine / bare loop, time per step: " + ", ".join(f"{r['engine / bare']} ({r['memory format']})" for r in eng),
            "a bare PyTorch loop doing the same work (1.00; target <= 1.05)")
