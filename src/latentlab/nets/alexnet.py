"""AlexNet with torchvision's parameter names, and a small variant for 32 px inputs.

Krizhevsky, Sutskever & Hinton, "ImageNet classification with deep convolutional neural networks",
NeurIPS 2012: 5 conv layers + 3 fully-connected layers, ReLU, dropout 0.5 on the two hidden FC
layers, optional local response normalisation (LRN) after the first two ReLUs.

Layout and state-dict keys are those of torchvision's ``AlexNet`` so its ``.pth`` files load:

    features   = [0 Conv(c,64,11,s4,p2), 1 ReLU, 2 MaxPool(3,2), 3 Conv(64,192,5,p2), 4 ReLU, 5 MaxPool(3,2),
                  6 Conv(192,384,3,p1), 7 ReLU, 8 Conv(384,256,3,p1), 9 ReLU, 10 Conv(256,256,3,p1), 11 ReLU,
                  12 MaxPool(3,2)]
    avgpool    = AdaptiveAvgPool2d(6)
    classifier = [0 Dropout, 1 Linear(9216,4096), 2 ReLU, 3 Dropout, 4 Linear(4096,4096), 5 ReLU, 6 Linear(4096,k)]

With ``lrn=True`` the ReLUs at ``features.1`` and ``features.4`` become ``Sequential(ReLU, LRN)``:
LRN has no parameters, so the keys (``features.{0,3,6,8,10}``, ``classifier.{1,4,6}``) do not move.
The input normalisation (``mean``/``std``) is a non-persistent buffer: not in the state dict.

``forward_features`` is the 4096-d output of fc7 after its ReLU (the paper's retrieval descriptor).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import ConfigError
from ..fileio import torch_load_weights
from .registry import register

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _relu(lrn: bool) -> nn.Module:
    if not lrn:
        return nn.ReLU()
    # paper: b = a / (k + alpha * sum_{n=5} a^2)^beta with k=2, alpha=1e-4, beta=0.75;
    # torch's LocalResponseNorm divides alpha by size, hence alpha * size.
    return nn.Sequential(nn.ReLU(), nn.LocalResponseNorm(5, alpha=1e-4 * 5, beta=0.75, k=2.0))


class AlexNet(nn.Module):
    def __init__(self, in_chans: int = 3, num_classes: int = 1000,
                 channels: tuple[int, ...] = (64, 192, 384, 256, 256), kernels: tuple[int, int] = (11, 5),
                 stride1: int = 4, hidden: int = 4096, pool_size: int = 6, dropout: float = 0.5,
                 lrn: bool = False, mean: tuple[float, ...] | None = None, std: tuple[float, ...] | None = None):
        super().__init__()
        if len(channels) != 5:
            raise ValueError(f"AlexNet needs 5 conv widths, got {channels}")
        c1, c2, c3, c4, c5 = channels
        k1, k2 = kernels
        self.in_chans, self.num_features = in_chans, hidden
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, c1, k1, stride=stride1, padding=2), _relu(lrn), nn.MaxPool2d(3, 2),  # (B,c1,H1,W1)
            nn.Conv2d(c1, c2, k2, padding=k2 // 2), _relu(lrn), nn.MaxPool2d(3, 2),                  # (B,c2,H2,W2)
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c3, c4, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c4, c5, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2),                        # (B,c5,H3,W3)
        )
        self.avgpool = nn.AdaptiveAvgPool2d((pool_size, pool_size))                               # (B,c5,P,P)
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(c5 * pool_size * pool_size, hidden), nn.ReLU(),        # fc6
            nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.ReLU(),                            # fc7
            nn.Linear(hidden, num_classes) if num_classes > 0 else nn.Identity(),                 # fc8
        )
        mean = mean if mean is not None else (0.5,) * in_chans
        std = std if std is not None else (0.5,) * in_chans
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He et al. 2015 init (fan-in, ReLU gain) for the hidden layers, N(0, 0.01) for fc8, zero biases.

        The paper's N(0, 0.01) everywhere (biases 1) and PyTorch's default both shrink the signal through
        8 layers so much that training stalls for hundreds of steps at lr 0.01; He init keeps its scale."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
        if isinstance(self.classifier[6], nn.Linear):
            nn.init.normal_(self.classifier[6].weight, std=0.01)

    def forward_maps(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [0, 1] -> last conv block's maps (B, c5, H3, W3)."""
        return self.features((x - self.mean) / self.std)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        f = self.avgpool(self.forward_maps(x)).flatten(1)                                         # (B, c5*P*P)
        return self.classifier[:6](f)                                                              # (B, hidden)

    def forward_head(self, f: torch.Tensor) -> torch.Tensor:
        return self.classifier[6](f)                                                               # (B, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


# the small variant: stride-1 5x5 first layer, narrower, for 28-32 px inputs on a CPU
SMALL = dict(channels=(32, 64, 96, 96, 64), kernels=(5, 5), stride1=1, hidden=256, pool_size=2)


@register("alexnet", example=lambda: (dict(in_chans=3, num_classes=10, channels=(8, 8, 8, 8, 8), hidden=16),
                                      (torch.randn(2, 3, 67, 67),)))
def alexnet(**kw) -> AlexNet:
    """torchvision-compatible AlexNet (224 px in the paper; any input >= 63 px)."""
    return AlexNet(**kw)


@register("alexnet_small", example=lambda: (dict(in_chans=1, num_classes=10, hidden=16), (torch.randn(2, 1, 28, 28),)))
def alexnet_small(**kw) -> AlexNet:
    """AlexNet shape for 28-32 px inputs: conv 5x5 s1, widths 32-64-96-96-64, 256-d FC layers."""
    return AlexNet(**{**SMALL, **kw})


def load_torchvision_alexnet(path: str | Path, num_classes: int | None = None, lrn: bool = False,
                             in_chans: int = 3) -> AlexNet:
    """An ``AlexNet`` from a torchvision state-dict file, loaded with ``torch.load(weights_only=True)``.

    ``num_classes`` other than the file's keeps everything but ``classifier.6`` (re-initialised).
    Inputs are then expected in [0, 1]; the ImageNet normalisation is applied inside.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such checkpoint file")
    sd = torch_load_weights(path, "a weights-only torch state dict", error=ConfigError)
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or "features.0.weight" not in sd or "classifier.6.weight" not in sd:
        raise ConfigError(f"{path}: not a torchvision AlexNet state dict (no features.0/classifier.6 weights)")
    file_classes = sd["classifier.6.weight"].shape[0]
    file_in = sd["features.0.weight"].shape[1]
    if file_in != in_chans:
        raise ConfigError(f"{path}: first conv takes {file_in} channels, not {in_chans}")
    widths = tuple(sd[f"features.{i}.weight"].shape[0] for i in (0, 3, 6, 8, 10))
    hidden = sd["classifier.1.weight"].shape[0]
    pool = int(round((sd["classifier.1.weight"].shape[1] / widths[-1]) ** 0.5))
    k = num_classes if num_classes is not None else file_classes
    model = AlexNet(in_chans, k, channels=widths, kernels=(sd["features.0.weight"].shape[-1],
                    sd["features.3.weight"].shape[-1]), hidden=hidden, pool_size=pool, lrn=lrn,
                    mean=IMAGENET_MEAN if in_chans == 3 else None, std=IMAGENET_STD if in_chans == 3 else None)
    if k != file_classes:
        sd = {n: v for n, v in sd.items() if not n.startswith("classifier.6.")}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if unexpected or [m for m in missing if not m.startswith("classifier.6.") or k == file_classes]:
        raise ConfigError(f"{path}: keys do not match AlexNet (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model
