"""Run benchmark suites and assemble BENCHMARKS.md.

    python -m benchmarks.run all            # every suite, then BENCHMARKS.md
    python -m benchmarks.run gan2d supervised
    python -m benchmarks.run --assemble     # rebuild BENCHMARKS.md from benchmarks/results/*.md

A suite is a module ``benchmarks/<name>.py`` with ``run(quick: bool) -> str`` returning a markdown
section (use ``common.section`` so command, machine, budget and seeds are always stated).
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import time
from pathlib import Path

from .common import RESULTS, ROOT, SkipSuite

ORDER = ["claims", "gan2d", "supervised", "engine_speed"]  # known suites first; others follow alphabetically


def suites() -> list[str]:
    names = [m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)])
             if m.name not in ("run", "common", "__init__") and not m.name.startswith("_")]
    return sorted(names, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))


def assemble() -> Path:
    parts = ["# latentlab benchmarks\n",
             "Every table below is written by `python -m benchmarks.run SUITE` (all: `make bench`); numbers "
             "are as measured on the stated machine, never edited by hand. Published figures are quoted "
             "beside ours with their protocol.\n",
             "Budgets are small (seconds to minutes of CPU per model on 2 cores), so most models are far from "
             "convergence: the tables show what each method reaches under an equal, stated budget, not its "
             "published accuracy. The suites of this file were measured while other suites and test runs "
             "shared the same 2 cores, so absolute speeds (images/s) are below an idle machine's; compare "
             "ratios within one table. Each section names its own command, machine, budget, seeds and commit.\n"]
    for name in suites():
        f = RESULTS / f"{name}.md"
        if f.exists():
            parts.append(f.read_text().strip() + "\n")
    out = ROOT / "BENCHMARKS.md"
    out.write_text("\n".join(parts))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run")
    p.add_argument("suites", nargs="*", help=f"suites to run, or 'all' (available: {', '.join(suites())})")
    p.add_argument("--quick", action="store_true", help="tiny budgets, to check the suites run")
    p.add_argument("--assemble", action="store_true", help="only rebuild BENCHMARKS.md")
    a = p.parse_args(argv)
    os.environ.setdefault("LATENTLAB_DATA", str(ROOT.parent / "shared" / "data"))
    names = suites() if a.suites == ["all"] else a.suites
    for n in names:
        if n not in suites():
            p.error(f"unknown suite {n!r}; available: {', '.join(suites())}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    if a.quick:
        os.environ["LATENTLAB_BENCH_QUICK"] = "1"
        from . import common
        common.OUT = common.OUT.parent / "out-quick"   # tiny runs never replace the real suites' runs
        common.RESULTS = common.OUT / "results"         # ... nor their figures
    for n in names:
        t0 = time.time()
        print(f"== benchmark {n}", flush=True)
        try:
            md = importlib.import_module(f"benchmarks.{n}").run(quick=a.quick)
        except SkipSuite as e:
            print(f"== {n} skipped: {e} (its last results are kept)", flush=True)
            continue
        if not a.quick:
            (RESULTS / f"{n}.md").write_text(md.strip() + "\n")
        else:
            print(md)
        print(f"== {n} done in {time.time() - t0:.0f}s", flush=True)
    if names and not a.quick or a.assemble:
        print(f"wrote {assemble()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
