"""metrics.jsonl (append-only, strict JSON, an unfinished last line dropped on read)
+ TensorBoard (scalars and image grids) + a rich progress bar or plain lines."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import torch

from ..errors import LatentlabError
from ..fileio import dumps, finite_json, write_text
from ..viz.grid import make_grid, save_image


class RunLogger:
    def __init__(self, run_dir: Path | None, total: int, start: int, enabled: bool = True, resume: bool = True,
                 progress: bool = True):
        """``resume``: drop records logged after ``start`` (a crashed run's tail) before appending."""
        self.enabled = enabled and run_dir is not None
        self.run_dir, self.total, self.start = run_dir, total, start
        self.tb = None
        self.progress = None
        self.show = progress                      # False: records and TensorBoard only, nothing printed
        self._t0 = time.perf_counter()
        self._last = {}
        if not self.enabled:
            return
        self.metrics_path = run_dir / "metrics.jsonl"
        if resume:
            _truncate_after(self.metrics_path, start)
        from torch.utils.tensorboard import SummaryWriter
        self.tb = SummaryWriter(str(run_dir / "tb"), purge_step=start + 1 if resume else None)
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
        self._append(rec)
        for k, v in values.items():
            if math.isfinite(float(v)):
                self.tb.add_scalar(k, float(v), step)
        info = "  ".join(f"{k}={v:.4g}" for k, v in list(values.items())[:4])
        if self.progress is not None:
            self.progress.update(self.task, completed=step, rate=rate, info=info)
        elif self.show:
            eta = (self.total - step) / rate if rate > 0 else float("nan")
            print(f"step {step}/{self.total}  {rate:.1f} steps/s  eta {eta:.0f}s  {info}", flush=True)

    def _append(self, rec: dict) -> None:
        """One line of strict JSON (a non-finite value as null), appended and flushed."""
        with open(self.metrics_path, "a") as f:
            f.write(dumps(rec) + "\n")

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
        non_finite: dict = {}
        rec = finite_json({"step": step, "kind": kind, **values}, found=non_finite)
        self._append({**rec, **({"non_finite": non_finite} if non_finite else {})})
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


def read_log(path: Path) -> tuple[list[dict], bool]:
    """The records of a ``metrics.jsonl`` and whether it needs repair: its last line is unfinished (no final
    newline: a process killed mid-write). An unfinished line that is not a record is dropped; one that is (only
    the newline was lost) is kept. Any other unreadable line is a LatentlabError naming the file and line."""
    path = Path(path)
    if not path.is_file():
        return [], False
    try:
        raw = path.read_bytes()
        lines = raw.decode("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise LatentlabError(f"{path}: cannot read the metrics log ({type(e).__name__})") from None
    unfinished = bool(raw) and not raw.endswith(b"\n")
    numbered = [(i, ln) for i, ln in enumerate(lines, 1) if ln.strip()]
    out = []
    for k, (i, ln) in enumerate(numbered):
        try:
            rec = json.loads(ln)
            if not isinstance(rec, dict) or not isinstance(rec.get("step", 0), int):
                raise ValueError("not a record with an integer step")
        except ValueError:
            if unfinished and k == len(numbered) - 1:
                break
            raise LatentlabError(f"{path}: line {i} is not a JSON record (only an unfinished last line is "
                                 f"dropped); fix or delete that line") from None
        out.append(rec)
    return out, unfinished


def _truncate_after(path: Path, step: int) -> None:
    """On resume, drop records logged after the checkpoint we resume from (and repair an unfinished last line)."""
    if not path.exists():
        return
    records, torn = read_log(path)
    keep = [r for r in records if r.get("step", 0) <= step]
    if torn or len(keep) != len(records):
        write_text(path, "".join(dumps(r) + "\n" for r in keep))


def read_metrics(run_dir: Path) -> list[dict]:
    """The records of a run's ``metrics.jsonl`` (a torn last line dropped; non-finite values are null)."""
    return read_log(Path(run_dir) / "metrics.jsonl")[0]
