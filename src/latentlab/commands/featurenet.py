"""``latentlab featurenet DATASET [--steps N]``: train and cache the frozen feature network for FID/KID.

The network is the ``supervised`` ConvNet with the recipe pinned here (``RECIPE``), so that a change of the
``supervised`` defaults cannot change the network every FID/KID in the benchmarks was measured with (its
sha256 is recorded beside each value). Evaluation only reads it (``eval.featurenet.load_featurenet``).
"""

from __future__ import annotations

import shutil

from ..errors import DataError

DEFAULT_STEPS = 1500
RECIPE = {"net": "convnet", "width": "32", "num_features": "128", "batch_size": "64", "lr": "0.001",
          "lr_schedule": "constant", "optimizer": "adam", "weight_decay": "0", "dropout": "0", "val_fraction": "0.1"}


def train_featurenet(dataset: str, steps: int = DEFAULT_STEPS, data_dir: str | None = None, seed: int = 0,
                     verbose: bool = True) -> dict:
    """Train ``supervised`` on ``dataset`` (10% of train held out) and cache it; returns its metadata."""
    from ..config import resolve_config
    from ..engine import open_run, train
    from ..eval.featurenet import BASE, featurenet_dir, sha256
    from ..fileio import save_safetensors, write_json
    from ..methods import get_method
    from ..modules import unwrap
    if dataset in BASE:
        raise DataError(f"{dataset}: uses the '{BASE[dataset]}' feature network per channel; "
                        f"run `latentlab featurenet {BASE[dataset]}`")
    out = featurenet_dir(dataset)
    run = out / "run"
    if run.exists():
        shutil.rmtree(run)
    over = {**RECIPE, "dataset": dataset, "steps": str(steps), "seed": str(seed), "image_every": "0",
            "ckpt_every": "0", "log_every": str(max(1, min(100, steps)))}
    if data_dir:
        over["data_dir"] = data_dir
    cls = get_method("supervised")
    cfg = resolve_config(cls.Config, "supervised", None, over)
    res = train(cls, cfg, out=run, verbose=verbose)
    model = unwrap(open_run(cls, run).model).cpu().eval()
    wpath = out / "featurenet.safetensors"
    save_safetensors(wpath, model.state_dict())
    meta = {"dataset": dataset, "net": cfg.net, "kwargs": {"in_chans": model.in_chans, "img_size": model.img_size,
            "num_classes": model.head.out_features, "width": cfg.width, "num_features": model.num_features},
            "steps": res.steps, "seed": seed, "val_fraction": cfg.val_fraction,
            "sha256": sha256(wpath), **(res.eval.metrics if res.eval else {})}
    write_json(out / "featurenet.json", meta)
    return meta


def cmd_featurenet(args) -> int:
    from ..eval.featurenet import featurenet_dir, load_featurenet
    meta = train_featurenet(args.dataset, args.steps, args.data_dir, args.seed, verbose=not args.quiet)
    fn = load_featurenet(args.dataset)   # checks the stored checksum
    print(f"featurenet {fn.name}: {meta['steps']} steps, val accuracy {meta.get('val_accuracy', float('nan')):.4f}, "
          f"test accuracy {meta.get('test_accuracy', float('nan')):.4f}")
    print(f"  sha256 {meta['sha256']}")
    print(f"  stored in {featurenet_dir(args.dataset)}")
    return 0


def register(subparsers) -> None:
    s = subparsers.add_parser("featurenet", help="train + cache the frozen classifier used for FID/KID on a dataset")
    s.add_argument("dataset")
    s.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"training steps (default {DEFAULT_STEPS})")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--data-dir", default=None)
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_featurenet)
