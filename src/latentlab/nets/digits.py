"""The digit networks of the domain-adaptation papers (timm-like API: ``forward_features``, ``num_features``,
``forward_head``; ``num_classes=0`` leaves the head out and ``forward`` returns the features).

- ``dann_digits``: Ganin et al., "Domain-adversarial training of neural networks", JMLR 2016, the MNIST ->
  MNIST-M network: conv 5x5 32 - pool - conv 5x5 48 - pool (features, 48 x 4 x 4 = 768 at 28 px), label
  predictor fc 100 - fc 100 - fc 10.
- ``lenet``: the LeNet of the MNIST <-> USPS experiments as CDAN's and TLlib's digit code build it (Long et al.
  2018): conv 5x5 20 - pool - conv 5x5 50 - dropout - pool - fc 500 (features), head fc 10.
"""

from __future__ import annotations

import torch
from torch import nn

from .registry import register


class _DigitNet(nn.Module):
    """Shared plumbing: ``conv`` (B, C, H, W) -> maps, ``fc`` maps -> features, ``head`` features -> logits."""

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).flatten(1))                    # (B, F)

    def forward_head(self, f: torch.Tensor) -> torch.Tensor:
        return self.head(f)                                        # (B, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _side(img_size: int) -> int:
    s = ((img_size - 4) // 2 - 4) // 2                             # two valid 5x5 convs, two 2x2 pools
    if s < 1:
        raise ValueError(f"the digit networks need img_size >= 16, got {img_size}")
    return s


class DANNDigits(_DigitNet):
    def __init__(self, in_chans: int = 3, img_size: int = 28, num_classes: int = 10, **_):
        super().__init__()
        self.in_chans, self.img_size = in_chans, img_size
        self.conv = nn.Sequential(nn.Conv2d(in_chans, 32, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),  # (B, 32, 12, 12)
                                  nn.Conv2d(32, 48, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2))        # (B, 48, 4, 4)
        self.num_features = 48 * _side(img_size) ** 2
        self.fc = nn.Identity()
        self.head = self.make_head(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    @staticmethod
    def make_head(num_features: int, num_classes: int) -> nn.Module:
        """The paper's label predictor: fc 100 - ReLU - fc 100 - ReLU - fc classes."""
        return nn.Sequential(nn.Linear(num_features, 100), nn.ReLU(inplace=True), nn.Linear(100, 100),
                             nn.ReLU(inplace=True), nn.Linear(100, num_classes))


class LeNet(_DigitNet):
    def __init__(self, in_chans: int = 1, img_size: int = 28, num_classes: int = 10, dropout: float = 0.5, **_):
        super().__init__()
        self.in_chans, self.img_size, self.num_features = in_chans, img_size, 500
        self.conv = nn.Sequential(nn.Conv2d(in_chans, 20, 5), nn.MaxPool2d(2), nn.ReLU(inplace=True),      # (B, 20, 12, 12)
                                  nn.Conv2d(20, 50, 5), nn.Dropout2d(dropout), nn.MaxPool2d(2), nn.ReLU(inplace=True))
        self.fc = nn.Sequential(nn.Linear(50 * _side(img_size) ** 2, 500), nn.ReLU(inplace=True),          # (B, 500)
                                nn.Dropout(dropout))
        self.head = self.make_head(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    @staticmethod
    def make_head(num_features: int, num_classes: int) -> nn.Module:
        return nn.Linear(num_features, num_classes)


def classifier_head(backbone: nn.Module, num_classes: int) -> nn.Module:
    """The classifier a backbone's paper puts on its features (its ``make_head``), else one linear layer."""
    make = getattr(type(backbone), "make_head", None)
    return make(backbone.num_features, num_classes) if make else nn.Linear(backbone.num_features, num_classes)


@register("dann_digits", example=lambda: (dict(in_chans=3, img_size=28), (torch.randn(2, 3, 28, 28),)))
def dann_digits(**kw) -> DANNDigits:
    return DANNDigits(**kw)


@register("lenet", example=lambda: (dict(in_chans=1, img_size=28), (torch.randn(2, 1, 28, 28),)))
def lenet(**kw) -> LeNet:
    return LeNet(**kw)
