"""`latentlab data {list,fetch,verify}`: argparse glue. Handlers take `args` and return an exit code;
they raise DataError for the CLI to print as `error: <msg>` (exit code 2)."""

from __future__ import annotations

import argparse

from latentlab.errors import DataError
from latentlab.data.download import fetch, get_spec, verify
from latentlab.data.paths import resolve_data_dir
from latentlab.data.registry import DATASETS
from latentlab.data.synthetic import DISTRIBUTIONS


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("data", help="list, fetch and verify datasets",
                              description="List, fetch and verify datasets. Data dir: --data-dir, "
                              "else $LATENTLAB_DATA, else ~/.cache/latentlab/data.")
    sub = p.add_subparsers(dest="data_command", required=True, metavar="{list,fetch,verify}")
    q = sub.add_parser("list", help="table of datasets and which of their files are present")
    q.add_argument("--data-dir", help="data directory (default: $LATENTLAB_DATA or ~/.cache/latentlab/data)")
    q.set_defaults(func=cmd_list)
    q = sub.add_parser("fetch", help="download a dataset's files and check their SHA-256")
    q.add_argument("name", help="dataset name (see `latentlab data list`)")
    q.add_argument("--mirror", help="base URL or directory laid out as <mirror>/<name>/<file> "
                   "(default: $LATENTLAB_MIRROR, else the canonical URLs)")
    q.add_argument("--data-dir", help="data directory")
    q.add_argument("--quiet", action="store_true", help="no progress output")
    q.set_defaults(func=cmd_fetch)
    q = sub.add_parser("verify", help="check a dataset's files against their SHA-256")
    q.add_argument("name", help="dataset name")
    q.add_argument("--data-dir", help="data directory")
    q.set_defaults(func=cmd_verify)
    return p


def _table(rows: list[tuple[str, ...]]) -> str:
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(c.ljust(n) for c, n in zip(r, w)) + "  " + r[-1] for r in rows)


def cmd_list(args) -> int:
    root = resolve_data_dir(args.data_dir)
    rows = [("name", "shape", "classes", "files", "description")]
    for s in DATASETS.values():
        n = sum((root / s.name / r).is_file() for r in s.files)
        files = ("embedded" if s.embedded else f"made from {s.fetch_as}" if s.fetch_as
                 else f"{n}/{len(s.files)} present")
        rows.append((s.name, "x".join(map(str, s.shape)), str(s.num_classes), files, s.description))
    for d in DISTRIBUTIONS.values():
        rows.append((d.name, f"{d.dim}-d", "-", "synthetic",
                     f"{len(d.modes)}-mode Gaussian mixture, sigma {d.sigma}"))
    print(_table(rows))
    print(f"data dir: {root}")
    return 0


def cmd_fetch(args) -> int:
    spec = get_spec(args.name)
    if spec.embedded:
        print(f"{args.name}: embedded, nothing to fetch")
        return 0
    if spec.fetch_as:
        print(f"{args.name}: made from {spec.fetch_as} when loaded; fetching {spec.fetch_as}")
        args.name = spec.fetch_as
    for p in fetch(args.name, args.data_dir, mirror=args.mirror, progress=not args.quiet):
        print(f"ok  {p}")
    return 0


def cmd_verify(args) -> int:
    spec = get_spec(args.name)
    if spec.embedded:
        print(f"{args.name}: embedded, nothing to verify")
        return 0
    if spec.fetch_as:
        print(f"{args.name}: made from {spec.fetch_as}; verifying {spec.fetch_as}")
        args.name = spec.fetch_as
    root = resolve_data_dir(args.data_dir) / args.name
    status = verify(args.name, args.data_dir)
    for rel, s in status.items():
        print(f"{s:<8}  {root / rel}")
    bad = [f"{r} {s}" for r, s in status.items() if s != "ok"]
    if bad:
        raise DataError(f"{root}: {', '.join(bad)} (run `latentlab data fetch {args.name}`)")
    return 0
