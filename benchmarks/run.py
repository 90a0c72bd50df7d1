"""Run benchmark suites and studies, and assemble BENCHMARKS.md.

    python -m benchmarks.run all                 # every suite, then BENCHMARKS.md (studies are not re-run)
    python -m benchmarks.run gan2d supervised    # some suites
    python -m benchmarks.run studies.ssl_dim     # a study (benchmarks/studies/ssl_dim.py)
    python -m benchmarks.run --assemble          # rebuild BENCHMARKS.md from benchmarks/results/*.md
    python -m benchmarks.run --render studies.ssl_dim ssl   # rewrite results/NAME.md from results/NAME.json

A suite is a module ``benchmarks/<name>.py`` that measures a method family against its published anchor
and is re-run when the code changes; a study is a module ``benchmarks/studies/<name>.py`` that answered one
question once (the MNIST-M chain of the ssl suite, the GPU checks). Both have ``run(quick: bool) -> str``
returning a markdown section (use ``common.section`` so command, machine, budget and seeds are always
stated), written to ``results/<name>.md``. A suite's ``headline()`` gives its line of BENCHMARKS.md's
headline table (its best result beside its anchor, read from its results); a module's
``report(results_json, measured=...)``, where it has one, renders its section again from its JSON
without training (``--render``). Every ± is ``common.SPREAD``, written by ``common.fmt_mean_se``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import sys
import time
from pathlib import Path

from . import common
from .common import RESULTS, ROOT, SPREAD, SkipSuite

HERE = Path(__file__).parent
ORDER = ["claims", "gan2d", "supervised", "engine_speed"]  # known suites first; others follow alphabetically
STUDY = "studies."


def _modules(folder: Path) -> list[str]:
    return [m.name for m in pkgutil.iter_modules([str(folder)])
            if not m.ispkg and m.name not in ("run", "common", "__init__") and not m.name.startswith("_")]


def suites() -> list[str]:
    return sorted(_modules(HERE), key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))


def studies() -> list[str]:
    """The studies, as ``studies.NAME`` (their results are results/NAME.md and results/NAME.json)."""
    return [STUDY + n for n in sorted(_modules(HERE / "studies"))]


def result_name(name: str) -> str:
    """The results file stem of a suite or study: ``studies.ssl_dim`` -> ``ssl_dim``."""
    return name.removeprefix(STUDY)


def module(name: str):
    return importlib.import_module(f"benchmarks.{name}")


def anchor(name: str) -> str:
    return result_name(name)


def _resolve(name: str) -> str | None:
    if name in suites() or name in studies():
        return name
    return STUDY + name if STUDY + name in studies() else None     # a study named without its prefix


def _section_md(name: str) -> str | None:
    f = RESULTS / f"{result_name(name)}.md"
    return f.read_text().strip() if f.is_file() else None


def _title(md: str) -> str:
    return md.splitlines()[0].removeprefix("## ").strip()


def _headline(name: str) -> tuple[str, str] | None:
    try:
        fn = getattr(module(name), "headline", None)
        return fn() if fn else None
    except Exception as e:                       # noqa: BLE001 - a broken module must not stop the report
        print(f"warning: no headline for {name}: {type(e).__name__}: {e}", file=sys.stderr)
        return None


def _claims_table() -> str:
    """The claims of the claims suite, one line each: verdict, anchor, and a link to the section with the evidence."""
    raw = common.load_json("claims")
    if not raw:
        return "The claims suite has not been run (`python -m benchmarks.run claims`).\n"
    try:
        anchors = {words: paper for words, paper, _ in module("claims").CLAIMS}
    except Exception:                            # noqa: BLE001
        anchors = {}
    names = sorted(suites(), key=len, reverse=True)
    rows = []
    for words, v in raw.items():
        src = next((n for n in names if f"{n} suite" in v.get("budget", "") and n != "claims"), "claims")
        rows.append([words, f"**{v['verdict']}**", anchors.get(words, ""), f"[{src}](#{anchor(src)})"])
    n = {k: sum(v["verdict"] == k for v in raw.values()) for k in ("PASS", "FAIL", "NOT MEASURED")}
    return (f"{n['PASS']} PASS, {n['FAIL']} FAIL, {n['NOT MEASURED']} NOT MEASURED of {len(raw)} claims; the evidence "
            f"and the rule of each are in the [claims section](#claims).\n\n"
            + common.table(["claim (the lecture's words)", "verdict", "anchor", "evidence"], rows) + "\n")


def assemble() -> Path:
    """BENCHMARKS.md from results/*.md (nothing is re-run): headline, contents, the suites, the studies."""
    present = lambda names: [(n, md) for n in names if (md := _section_md(n))]      # noqa: E731
    suite_md, study_md = present(suites()), present(studies())
    lines = []
    for name, md in suite_md:
        if name == "claims":
            continue
        h = _headline(name)
        best, anc = h if h else ("see its section", "")
        lines.append([f"[{name}](#{anchor(name)})", best, anc])
    toc = ["- Suites"] + [f"  - [{_title(md)}](#{anchor(n)})" for n, md in suite_md]
    toc += ["- [Studies](#studies)"] + [f"  - [{_title(md)}](#{anchor(n)})" for n, md in study_md]
    parts = ["# latentlab benchmarks\n",
             "Every table below is written by `python -m benchmarks.run NAME` (all suites: `make bench`); numbers "
             "are as measured on the stated machine, never edited by hand. Published figures are quoted "
             "beside ours with their protocol.\n",
             f"**±** everywhere: {SPREAD}\n",
             "Budgets are small (seconds to minutes of CPU per model on 2 cores), so most models are far from "
             "convergence: the tables show what each method reaches under an equal, stated budget, not its "
             "published accuracy. The suites of this file were measured while other suites and test runs "
             "shared the same 2 cores, so absolute speeds (images/s) are below an idle machine's; compare "
             "ratios within one table. Each section names its own command, machine, budget, seeds and commit.\n",
             "## Headline\n",
             "### The lecture's claims\n",
             _claims_table(),
             "### One line per suite: its best result beside its anchor\n",
             "Read from each suite's results (its JSON, or its table where it writes none); the anchors are "
             "published at other scales (data, networks, budgets), as each section states.\n",
             common.table(["suite", "best result (ours)", "anchor"], lines) + "\n",
             "## Contents\n",
             "\n".join(toc) + "\n",
             "# Suites\n",
             "A suite measures a method family against its anchor and is re-run when the code changes "
             "(`python -m benchmarks.run SUITE`).\n"]
    parts += [f'<a id="{anchor(n)}"></a>\n\n{md}\n' for n, md in suite_md]
    parts += ['<a id="studies"></a>\n\n# Studies\n',
              "A study answered one question once (most of them the chain of MNIST-M questions that the ssl suite "
              "raised, each answering the one before; and the GPU checks). Each is kept runnable "
              "(`python -m benchmarks.run studies.NAME`, code in `benchmarks/studies/`) but is not part of "
              "`make bench`.\n"]
    parts += [f'<a id="{anchor(n)}"></a>\n\n{md}\n' for n, md in study_md]
    out = ROOT / "BENCHMARKS.md"
    out.write_text("\n".join(parts))
    return out


def render(name: str) -> Path:
    """Write results/NAME.md again from results/NAME.json with the module's ``report`` (no training); the
    measured machine and commit are kept from the old section."""
    stem = result_name(name)
    mod = module(name)
    if not hasattr(mod, "report"):
        raise SystemExit(f"{name} has no report(); re-run it instead")
    raw = json.loads((RESULTS / f"{stem}.json").read_text())
    md = mod.report(raw, measured=common.measured_header(stem))
    out = RESULTS / f"{stem}.md"
    out.write_text(md.strip() + "\n")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run")
    p.add_argument("suites", nargs="*", help=f"suites to run, or 'all' (suites: {', '.join(suites())}; "
                                             f"studies: {', '.join(studies())})")
    p.add_argument("--quick", action="store_true", help="tiny budgets, to check the suites run")
    p.add_argument("--assemble", action="store_true", help="only rebuild BENCHMARKS.md")
    p.add_argument("--render", action="store_true",
                   help="rewrite the named results/NAME.md from results/NAME.json (no training), then assemble")
    a = p.parse_args(argv)
    os.environ.setdefault("LATENTLAB_DATA", str(ROOT.parent / "shared" / "data"))
    names = suites() if a.suites == ["all"] else a.suites
    resolved = []
    for n in names:
        r = _resolve(n)
        if r is None:
            p.error(f"unknown suite or study {n!r}; suites: {', '.join(suites())}; studies: {', '.join(studies())}")
        resolved.append(r)
    if a.render:
        for n in resolved:
            print(f"wrote {render(n)}")
        print(f"wrote {assemble()}")
        return 0
    RESULTS.mkdir(parents=True, exist_ok=True)
    if a.quick:
        os.environ["LATENTLAB_BENCH_QUICK"] = "1"
        common.OUT = common.OUT.parent / "out-quick"   # tiny runs never replace the real suites' runs
        common.RESULTS = common.OUT / "results"         # ... nor their figures
    for n in resolved:
        t0 = time.time()
        print(f"== benchmark {n}", flush=True)
        try:
            md = module(n).run(quick=a.quick)
        except SkipSuite as e:
            print(f"== {n} skipped: {e} (its last results are kept)", flush=True)
            continue
        if not a.quick:
            (RESULTS / f"{result_name(n)}.md").write_text(md.strip() + "\n")
        else:
            print(md)
        print(f"== {n} done in {time.time() - t0:.0f}s", flush=True)
    if resolved and not a.quick or a.assemble:
        print(f"wrote {assemble()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
