"""The small LeNet-style ConvNet used as classifier, encoder and frozen feature network.

LeCun et al., "Gradient-based learning applied to document recognition", Proc. IEEE 1998.
Two 5x5 conv + ReLU + 2x2 max-pool stages, then a fully-connected feature layer.
API (timm-like): ``forward_features(x) -> (B, num_features)``, ``forward_head(f) -> (B, classes)``.
"""

from __future__ import annotations

import torch
from torch import nn

from .registry import register


class ConvNet(nn.Module):
    def __init__(self, in_chans: int = 1, img_size: int = 28, num_classes: int = 10,
                 width: int = 32, num_features: int = 128, dropout: float = 0.0):
        super().__init__()
        self.in_chans, self.img_size, self.num_features = in_chans, img_size, num_features
        s = img_size // 4  # two 2x2 pools
        if s < 1:
            raise ValueError(f"ConvNet needs img_size >= 4, got {img_size}")
        self.conv1 = nn.Conv2d(in_chans, width, 5, padding=2)      # (B, w, H, W)
        self.conv2 = nn.Conv2d(width, 2 * width, 5, padding=2)     # (B, 2w, H/2, W/2)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(2 * width * s * s, num_features)       # (B, F)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(num_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward_maps(self, x: torch.Tensor) -> torch.Tensor:
        # relu(pool(.)) equals pool(relu(.)) (both monotone) and runs ReLU on a quarter of the values
        x = torch.relu(self.pool(self.conv1(x)))                   # (B, w, H/2, W/2)
        return torch.relu(self.pool(self.conv2(x)))                # (B, 2w, H/4, W/4)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc(self.forward_maps(x).flatten(1)))  # (B, F)

    def forward_head(self, f: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(f))                             # (B, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register("convnet", example=lambda: (dict(in_chans=1, img_size=28), (torch.randn(2, 1, 28, 28),)))
def convnet(**kw) -> ConvNet:
    return ConvNet(**kw)
