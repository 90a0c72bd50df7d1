"""metrics.jsonl + TensorBoard (scalars and image grids) + a rich progress bar or plain lines."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import torch

from ..viz.grid import make_grid, save_image


class RunLogger:
    def __init__(self, run_dir: Path | None, total: int, start: int, enabled: bool = True, resume: bool = True,
                 progress: bool = True):
        """``resume``: drop records logged after ``start`` (a crashed run's tail) before appending."""
        self.enabled = enabled and run_dir is not None
        self.run_dir, self.total, self.start = run_dir, total, start
        self.tb = None
        self.progress = None
        self._t0 = time.perf_counter()
        self._last = {}
        if not self.enabled:
            return
        self.metrics_path = run_dir / "metrics.jsonl"
        if resume:
            _truncate_after(self.metrics_path, start)
        from torch.utils.tensorboard import SummaryWriter
        self.tb = SummaryWriter(str(run_dir / "tb"), purge_step=start + 1 if start and resume else None)
        if progress and sys.stdout.isatty():
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)
            self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[rate]:>7.1f} steps/s"), TimeElapsedColumn(),
                                     TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[info]}"))
            self.task = self.progress.add_task("train", total=total, completed=start, rate=0.0, info="")
            self.progress.start()

    def log(self, step: int, values: dict[str, float]) -> None:
        """``step`` is the number of completed steps; ``values`` are window means."""
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self._t0
        rate = (step - self.start) / elapsed if elapsed > 0 else 0.0
        rec = {"step": step, **{k: float(v) for k, v in values.items()}, "steps_per_s": rate,
               "elapsed_s": elapsed}
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(rec) + "\n")
        for k, v in values.items():
            if math.isfinite(float(v)):
                self.tb.add_scalar(k, float(v), step)
        info = "  ".join(f"{k}={v:.4g}" for k, v in list(values.items())[:4])
        if self.progress is not None:
            self.progress.update(self.task, completed=step, rate=rate, info=info)
        else:
            eta = (self.total - step) / rate if rate > 0 else float("nan")
            print(f"step {step}/{self.total}  {rate:.1f} steps/s  eta {eta:.0f}s  {info}", flush=True)

    def advance(self, step: int) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=step)

    def images(self, step: int, images: dict[str, torch.Tensor]) -> dict[str, Path]:
        out = {}
        if not self.enabled:
            return out
        for name, img in images.items():
            grid = make_grid(img) if img.dim() == 4 else img
            path = self.run_dir / "images" / f"{name}_{step:07d}.png"
            save_image(grid, path)
            self.tb.add_image(name, grid.clamp(0, 1), step)
            out[name] = path
        return out

    def record(self, step: int, values: dict[str, float], kind: str) -> None:
        """A non-training record (e.g. final evaluation) in metrics.jsonl and TensorBoard."""
        if not self.enabled:
            return
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps({"step": step, "kind": kind, **values}) + "\n")
        for k, v in values.items():
            if isinstance(v, (int, float)) and math.isfinite(float(v)):
                self.tb.add_scalar(f"{kind}/{k}", float(v), step)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        if self.tb is not None:
            self.tb.flush()
            self.tb.close()
            self.tb = None


def _truncate_after(path: Path, step: int) -> None:
    """On resume, drop records logged after the checkpoint we resume from."""
    if not path.exists():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln).get("step", 0) <= step]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(ln + "\n" for ln in keep))
    tmp.replace(path)


def read_metrics(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()] if path.exists() else []
