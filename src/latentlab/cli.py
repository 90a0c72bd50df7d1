"""``latentlab``: train, evaluate, sample and inspect every method from one command.

    latentlab methods [--verbose]
    latentlab train METHOD [--config F.yaml] [--out DIR] [--dry-run] [key=value ...]
    latentlab train METHOD --resume RUN_DIR [key=value ...]   (only config.RESUMABLE_KEYS may change)
    latentlab eval RUN_DIR [--protocol P] [--layer features|maps|MODULE] [--option KEY=VALUE] [--json]
    latentlab sample RUN_DIR --n N --out FILE.png [--class C] [--seed S]
    latentlab data list | fetch NAME | verify NAME

A bad input prints one ``error: ...`` line naming the problem and exits with code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

def cmd_methods(args) -> int:
    from .config import describe
    from .methods import METHODS
    from rich.console import Console
    from rich.table import Table
    table = Table(title="latentlab methods")
    for col in ("method", "what it does", "paper"):
        table.add_column(col)
    for name in sorted(METHODS):
        cls = METHODS[name]
        table.add_row(name, cls.summary, cls.paper)
    Console(width=160).print(table)
    if args.verbose:
        for name in sorted(METHODS):
            print(f"\n{name}:")
            print(f"  protocols: default, {', '.join(METHODS[name].protocols) or '(none other)'}")
            for key, tp, default, help_ in describe(METHODS[name].Config):
                print(f"  {key:<16} {tp:<20} {default!r:<22} {help_}")
    return 0


def cmd_train(args) -> int:
    from .api import train_config
    from .config import parse_overrides, to_yaml
    from .engine import train
    from .methods import get_method
    cfg = train_config(args.method, args.config, parse_overrides(args.overrides), args.resume, args.out)
    if args.dry_run:
        print(to_yaml(cfg, args.method), end="")
        return 0
    res = train(get_method(args.method), cfg, out=args.out, resume=args.resume)
    if res.eval is None:
        return 0
    _print_result(res.run_dir, res.eval.metrics, res.artifacts, res.steps, res.seconds)
    if res.eval.summary:
        print(res.eval.summary)
    return 0


def _print_result(run_dir, metrics, artifacts, steps=None, seconds=None) -> None:
    if steps is not None:
        print(f"trained {steps} steps in {seconds:.1f}s")
    for k, v in metrics.items():
        print(f"  {k:<20} {v:.6g}" if isinstance(v, float) else f"  {k:<20} {v}")
    for k, v in artifacts.items():
        print(f"  {k:<20} {v}")
    print(f"run directory: {run_dir}  (tensorboard --logdir {Path(run_dir) / 'tb'})")


def cmd_eval(args) -> int:
    from .api import load_run
    from .engine import write_eval
    from .engine.loop import eval_file, eval_record
    from .eval import run_protocol
    from .fileio import dumps
    method = load_run(args.run_dir)
    kw = {"layer": args.layer} if args.layer else {}
    if args.weight_decays:
        kw["weight_decays"] = _floats(args.weight_decays, "--weight-decays")
    kw.update(_options(args.option))
    res = run_protocol(method, args.protocol, **kw)
    edge = res.protocol.get("weight_decay_at_grid_edge")
    if edge:
        print(f"note: the chosen weight decay {res.protocol['weight_decay']:g} is the grid's {edge}; the best may "
              f"lie beyond it (widen the grid with --weight-decays)", file=sys.stderr)
    write_eval(args.run_dir, res, method.step, eval_file(args.protocol, args.layer))
    if args.json:
        metrics, protocol = eval_record(res)
        print(dumps({**metrics, "protocol": protocol}))
    else:
        _print_result(args.run_dir, res.metrics, res.artifacts)
    return 0


def _options(items: list[str] | None) -> dict:
    """``--option key=value`` pairs of a protocol (``--option split=test --option n=2000``); numbers parsed."""
    from .errors import ConfigError
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--option '{item}': expected KEY=VALUE")
        for cast in (int, float):
            try:
                value = cast(value)
                break
            except ValueError:
                pass
        out[key] = value
    return out


def _floats(text: str, option: str) -> list[float]:
    from .errors import ConfigError
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise ConfigError(f"{option}: expected comma-separated numbers, got '{text}'") from None


def cmd_sample(args) -> int:
    from .api import load_run
    from .errors import ConfigError
    if args.n < 1:
        raise ConfigError(f"--n {args.n}: the number of samples must be at least 1")
    method = load_run(args.run_dir)
    if not method.generative:
        raise ConfigError(f"{args.run_dir}: method '{method.name}' is not generative: nothing to sample")
    kw = {"seed": args.seed}
    if args.cls is not None:
        kw["label"] = args.cls
    path = method.save_samples(args.n, Path(args.out), **kw)
    print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="latentlab", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("methods", help="list the methods with their papers")
    s.add_argument("--verbose", "-v", action="store_true", help="also list every config key and default")
    s.set_defaults(func=cmd_methods)

    s = sub.add_parser("train", help="train a method (defaults < --config < key=value)")
    s.add_argument("method")
    s.add_argument("overrides", nargs="*", metavar="key=value")
    s.add_argument("--config", help="YAML file of config keys")
    s.add_argument("--out", help="run directory (default runs/<method>-<dataset>-<time>)")
    s.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint (from step 0 if it "
                   "stopped before its first); key=value may change only the length of training, the cadence of "
                   "logs, pictures, checkpoints and monitors, data_dir and the speed switches")
    s.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("eval", help="evaluate a run's last checkpoint")
    s.add_argument("run_dir")
    s.add_argument("--protocol", help="a protocol the run's method supports (its default evaluation without; "
                   "`latentlab methods --verbose` lists each method's protocols)")
    s.add_argument("--layer", help="representation protocols: features (forward_features, default), maps (the last "
                   "conv maps, pooled to <= 4096 values) or a module name (named_modules; output flattened)")
    s.add_argument("--weight-decays", metavar="W1,W2,...", help="linear protocol: the weight decays tried on the "
                   "validation split (default: the probe's grid; the result records it as weight_decay_grid)")
    s.add_argument("--option", action="append", metavar="KEY=VALUE", help="a protocol's option, e.g. split=test, "
                   "n=2000 (repeatable)")
    s.add_argument("--json", action="store_true", help="print one JSON object of metric -> value")
    s.set_defaults(func=cmd_eval)

    s = sub.add_parser("sample", help="draw samples from a generative run into a PNG")
    s.add_argument("run_dir")
    s.add_argument("--n", type=int, default=64)
    s.add_argument("--out", required=True)
    s.add_argument("--class", dest="cls", type=int, default=None, help="class label (conditional models)")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=cmd_sample)

    from .commands import register_all
    from .data.commands import register as register_data
    register_data(sub)
    register_all(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    from .errors import LatentlabError
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:  # ``key=value`` overrides may come after options: train METHOD --out D lr=1
            if getattr(args, "command", None) != "train" or any(e.startswith("-") for e in extra):
                parser.error(f"unrecognized arguments: {' '.join(extra)}")
            args.overrides = [*args.overrides, *extra]
    except SystemExit as e:
        return int(e.code or 0)
    try:
        return int(args.func(args) or 0)
    except LatentlabError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:                  # a path that cannot be written or read: a directory, no permission, ...
        where = f"{e.filename}: " if e.filename else ""
        print(f"error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        from .engine import TrainingInterrupted
        if isinstance(e, TrainingInterrupted):
            print(str(e), file=sys.stderr)
            return e.exit_code
        raise
    finally:
        from .distributed import close_process_group
        close_process_group()


if __name__ == "__main__":
    sys.exit(main())
