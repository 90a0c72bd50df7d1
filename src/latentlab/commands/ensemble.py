"""``latentlab ensemble RUN_DIR RUN_DIR ...``: average the runs' softmax predictions on the test set
(Krizhevsky et al. 2012 averaged 5-7 CNNs) and report the gain over the single models."""

from __future__ import annotations


import torch
import torch.nn.functional as F

from ..errors import LatentlabError
from ._common import open_run


@torch.no_grad()
def class_probs(method, images: torch.Tensor, tta: bool = False, batch_size: int = 500) -> torch.Tensor:
    """(N, classes) softmax of a classifier run: its ``predict_proba`` if it has one, else softmax of
    ``method.model`` on ``prepare_images`` inputs."""
    if hasattr(method, "predict_proba"):
        return method.predict_proba(images, tta=tta)
    if tta:
        raise LatentlabError(f"method '{method.name}' has no test-time augmentation")
    model = getattr(method, "model", None)
    if model is None:
        raise LatentlabError(f"method '{method.name}' is not a classifier (no model): cannot ensemble")
    was = model.training
    model.eval()
    out = [F.softmax(model(method.prepare_images(images[i:i + batch_size])), 1).cpu()
           for i in range(0, len(images), batch_size)]
    model.train(was)
    return torch.cat(out)


def ensemble(run_dirs: list[str], tta: bool = False, test_subset: int | None = None) -> dict:
    """Accuracy of each run and of the mean of their softmax outputs on the test split (or on the same
    fixed seed-0 subset of ``test_subset`` images that ``alexnet``'s ``test_subset`` key uses)."""
    from ..data import load_dataset
    if len(run_dirs) < 2:
        raise LatentlabError("ensemble needs at least 2 run directories")
    probs, names, test = [], [], None
    for d in run_dirs:
        m = open_run(d)
        t = load_dataset(m.cfg.dataset, "test", m.cfg.data_dir)
        if test is not None and t.name != test.name:
            raise LatentlabError(f"{d}: dataset '{t.name}' differs from the first run's '{test.name}'")
        test = t
        if test_subset is not None and test_subset < len(t):
            keep = torch.randperm(len(t), generator=torch.Generator().manual_seed(0))[:test_subset]
            t = test = t.subset(keep.sort().values)
        if probs and not torch.equal(t.labels, y):
            raise LatentlabError(f"{d}: test labels differ from the first run's (another dataset version?)")
        y = t.labels
        probs.append(class_probs(m, t.images, tta))
        names.append(str(d))
    acc = lambda p: (p.argmax(1) == y).float().mean().item()
    singles = [acc(p) for p in probs]
    ens = acc(torch.stack(probs).mean(0))
    mean_single = sum(singles) / len(singles)
    return {"single_accuracy": dict(zip(names, singles)), "mean_single_accuracy": mean_single,
            "best_single_accuracy": max(singles), "ensemble_accuracy": ens,
            "gain_over_mean_single": ens - mean_single, "gain_over_best_single": ens - max(singles),
            "protocol": {"dataset": test.name, "split": "test", "n_test": len(y), "n_models": len(probs),
                         "test_subset": test_subset,
                         "combination": "mean of softmax probabilities", "tta": tta}}


def cmd_ensemble(a) -> int:
    r = ensemble(a.run_dirs, a.tta, a.test_subset)
    if a.json:
        from ..fileio import dumps
        print(dumps(r))
        return 0
    for d, v in r["single_accuracy"].items():
        print(f"  single  {v:.4f}  {d}")
    print(f"  mean single accuracy   {r['mean_single_accuracy']:.4f}")
    print(f"  ensemble accuracy      {r['ensemble_accuracy']:.4f}  "
          f"(gain {r['gain_over_mean_single']:+.4f} over the mean single, {r['gain_over_best_single']:+.4f} over the best)")
    return 0


def register(sub) -> None:
    s = sub.add_parser("ensemble", help="average several runs' test predictions; gain over single models")
    s.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    s.add_argument("--tta", action="store_true", help="each model with its test-time augmentation")
    s.add_argument("--test-subset", type=int, default=None, help="a fixed seed-0 subset of N test images")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_ensemble)
