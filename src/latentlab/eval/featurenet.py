"""The project's own frozen feature network per dataset, for FID/KID and class statistics.

Inception weights cannot be downloaded here, so FID is measured in the feature space of the
``supervised`` ConvNet trained on the dataset's train split (a validation part held out). It is trained
once by ``latentlab featurenet DATASET`` (or ``latentlab.featurenet(DATASET)``; evaluation never trains it)
and cached with its sha256 and accuracies:

    $LATENTLAB_CACHE/featurenets/<dataset>/featurenet.safetensors, featurenet.json

Every FID/KID value records the feature network's name and checksum: numbers from different feature
networks are not comparable. ``stacked_mnist`` uses the MNIST network on each channel (features
concatenated, class = 100 * digit_R + 10 * digit_G + digit_B).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from torch import nn

from ..data.paths import resolve_cache_dir
from ..errors import DataError

BASE = {"stacked_mnist": "mnist"}  # datasets whose feature network is another dataset's, per channel


def featurenet_dir(dataset: str) -> Path:
    return resolve_cache_dir() / "featurenets" / dataset


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


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


def load_featurenet(dataset: str) -> FeatureNet:
    """The cached feature network of ``dataset`` (checksum verified); a missing one is an error naming the
    command that makes it."""
    from safetensors.torch import load_file

    from .. import nets
    base = BASE.get(dataset, dataset)
    out = featurenet_dir(base)
    wpath, mpath = out / "featurenet.safetensors", out / "featurenet.json"
    if not (wpath.is_file() and mpath.is_file()):
        raise DataError(f"{out}: no feature network for '{base}' (FID, KID and the class protocols need one); "
                        f"train it once with `latentlab featurenet {base}`")
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
