"""The project's own frozen feature network per dataset, for FID/KID and class statistics.

Inception weights cannot be downloaded here, so FID is measured in the feature space of the
``supervised`` ConvNet trained on the dataset's train split (a validation part held out). It is trained
once by ``latentlab featurenet DATASET`` and cached with its sha256 and accuracies:

    $LATENTLAB_CACHE/featurenets/<dataset>/featurenet.safetensors, featurenet.json

Every FID/KID value records the feature network's name and checksum: numbers from different feature
networks are not comparable. ``stacked_mnist`` uses the MNIST network on each channel (features
concatenated, class = 100 * digit_R + 10 * digit_G + digit_B).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import torch
from torch import nn

from ..data.registry import resolve_cache_dir
from ..errors import DataError
from ..fileio import save_safetensors, write_json

DEFAULT_STEPS = 1500
# the feature network's recipe, pinned here so that a change of the ``supervised`` defaults cannot change the
# network every FID/KID in the benchmarks was measured with (its sha256 is recorded beside each value)
RECIPE = {"net": "convnet", "width": "32", "num_features": "128", "batch_size": "64", "lr": "0.001",
          "lr_schedule": "constant", "optimizer": "adam", "weight_decay": "0", "dropout": "0", "val_fraction": "0.1"}
BASE = {"stacked_mnist": "mnist"}  # datasets whose feature network is another dataset's, per channel


def featurenet_dir(dataset: str) -> Path:
    return resolve_cache_dir() / "featurenets" / dataset


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def train_featurenet(dataset: str, steps: int = DEFAULT_STEPS, data_dir: str | None = None, seed: int = 0,
                     verbose: bool = True) -> dict:
    """Train ``supervised`` on ``dataset`` (10% of train held out) and cache it; returns its metadata."""
    from ..config import resolve_config
    from ..engine import train
    from ..methods import get_method
    from ..methods.base import unwrap
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
    cfg = resolve_config(get_method("supervised").Config, "supervised", None, over)
    res = train("supervised", cfg, out=run, verbose=verbose)
    from ..engine import load_run
    model = unwrap(load_run(run).model).cpu().eval()
    wpath = out / "featurenet.safetensors"
    save_safetensors(wpath, model.state_dict())
    meta = {"dataset": dataset, "net": cfg.net, "kwargs": {"in_chans": model.in_chans, "img_size": model.img_size,
            "num_classes": model.head.out_features, "width": cfg.width, "num_features": model.num_features},
            "steps": res.steps, "seed": seed, "val_fraction": cfg.val_fraction,
            "sha256": sha256(wpath), **(res.eval.metrics if res.eval else {})}
    write_json(out / "featurenet.json", meta)
    return meta


class FeatureNet(nn.Module):
    """Frozen classifier: ``features(x) -> (B, F) float64`` and ``logits(x)``; x float in [0, 1].

    For stacked datasets (``per_channel``) each channel goes through the base network separately.
    """

    def __init__(self, model: nn.Module, meta: dict, per_channel: bool = False):
        super().__init__()
        self.model, self.meta, self.per_channel = model.eval().requires_grad_(False), meta, per_channel
        self.model.to(memory_format=torch.channels_last)          # ~2x faster convs and pooling on CPU
        self.name = f"{meta['net']}[{meta['dataset']}]" + ("/channel" if per_channel else "")
        self.sha256 = meta["sha256"]

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, F) float64; per channel (B, 3, H, W) -> (B, 3F)."""
        return self.read(x)[0]

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted class (B,); per channel: the 3-digit number 100 a + 10 b + c."""
        return self.read(x)[1]

    @torch.no_grad()
    def predict_confidence(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(predicted class (B,), confidence (B,)): the classifier's softmax probability of its prediction;
        per channel (Stacked-MNIST) the smallest of the three digits' probabilities."""
        return self.read(x)[1:]

    @torch.no_grad()
    def read(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One pass of the network: (features (B, F) float64, predicted class (B,), confidence (B,))."""
        chans = [x[:, c:c + 1] for c in range(x.shape[1])] if self.per_channel else [x]
        feats, out = [], torch.zeros(len(x), dtype=torch.long, device=x.device)
        conf = torch.ones(len(x), device=x.device)
        for xc in chans:
            f = self.model.forward_features(xc.float().contiguous(memory_format=torch.channels_last))
            pc, d = self.model.forward_head(f).softmax(1).max(1)
            feats.append(f.double())
            out, conf = out * self.meta["kwargs"]["num_classes"] + d, torch.minimum(conf, pc)
        return torch.cat(feats, 1), out, conf

    def protocol(self) -> dict:
        m = self.meta
        return {"feature_net": self.name, "feature_net_sha256": self.sha256,
                "feature_net_val_accuracy": m.get("val_accuracy"), "feature_net_test_accuracy": m.get("test_accuracy"),
                "feature_net_steps": m.get("steps")}


def load_featurenet(dataset: str, data_dir: str | None = None, train_if_missing: bool = True,
                    steps: int = DEFAULT_STEPS, verbose: bool = True) -> FeatureNet:
    """The cached feature network of ``dataset`` (checksum verified), trained first if missing."""
    from safetensors.torch import load_file

    from .. import nets
    base = BASE.get(dataset, dataset)
    out = featurenet_dir(base)
    wpath, mpath = out / "featurenet.safetensors", out / "featurenet.json"
    if not (wpath.is_file() and mpath.is_file()):
        if not train_if_missing:
            raise DataError(f"{out}: no feature network for '{base}'; run `latentlab featurenet {base}`")
        if verbose:
            print(f"featurenet: none cached for '{base}', training it ({steps} steps) -> {out}", flush=True)
        train_featurenet(base, steps, data_dir, verbose=verbose)
    try:
        meta = json.loads(mpath.read_text())
        meta["sha256"], meta["net"], meta["kwargs"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise DataError(f"{mpath}: unreadable feature-network metadata; train it again with "
                        f"`latentlab featurenet {base}`") from None
    digest = sha256(wpath)
    if digest != meta["sha256"]:
        raise DataError(f"{wpath}: sha256 {digest[:12]}... does not match featurenet.json "
                        f"({meta['sha256'][:12]}...); retrain with `latentlab featurenet {base}`")
    model = nets.create(meta["net"], **meta["kwargs"])
    model.load_state_dict(load_file(str(wpath)))
    return FeatureNet(model, meta, per_channel=base != dataset)
