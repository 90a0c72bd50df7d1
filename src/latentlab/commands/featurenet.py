"""``latentlab featurenet DATASET [--steps N]``: train and cache the frozen feature network for FID/KID."""

from __future__ import annotations


def cmd_featurenet(args) -> int:
    from ..eval.featurenet import featurenet_dir, load_featurenet, train_featurenet
    meta = train_featurenet(args.dataset, args.steps, args.data_dir, args.seed, verbose=not args.quiet)
    fn = load_featurenet(args.dataset, args.data_dir, train_if_missing=False)   # checks the stored checksum
    print(f"featurenet {fn.name}: {meta['steps']} steps, val accuracy {meta.get('val_accuracy', float('nan')):.4f}, "
          f"test accuracy {meta.get('test_accuracy', float('nan')):.4f}")
    print(f"  sha256 {meta['sha256']}")
    print(f"  stored in {featurenet_dir(args.dataset)}")
    return 0


def register(subparsers) -> None:
    from ..eval.featurenet import DEFAULT_STEPS
    s = subparsers.add_parser("featurenet", help="train + cache the frozen classifier used for FID/KID on a dataset")
    s.add_argument("dataset")
    s.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"training steps (default {DEFAULT_STEPS})")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--data-dir", default=None)
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_featurenet)
