"""ResNet-18 with the CIFAR stem (3x3 conv, stride 1, no max-pool) for 28-32 px images.

He et al., "Deep residual learning for image recognition", CVPR 2016; the CIFAR stem as in the SimCLR
paper's CIFAR-10 experiments (Chen et al. 2020, App. B.9). Parameter names follow torchvision
(conv1, bn1, layer1.0.conv1, ..., layer4.1.bn2, fc), so its state dicts load into torchvision's resnet18
apart from the stem conv's kernel size.
"""

from __future__ import annotations

import torch
from torch import nn

from .registry import register


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + idt)


class ResNet(nn.Module):
    def __init__(self, layers=(2, 2, 2, 2), in_chans: int = 3, num_classes: int = 10, width: int = 64,
                 img_size: int = 32, **_unused):
        super().__init__()
        self.in_chans, self.img_size = in_chans, img_size
        self.conv1 = nn.Conv2d(in_chans, width, 3, 1, 1, bias=False)   # CIFAR stem: (B, w, H, W)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        planes, inplanes = width, width
        for i, n in enumerate(layers):
            blocks = []
            for j in range(n):
                blocks.append(BasicBlock(inplanes, planes, stride=2 if (i > 0 and j == 0) else 1))
                inplanes = planes
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))      # (B, w*2^i, H/2^i, W/2^i)
            planes *= 2
        self.num_features = inplanes
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, num_classes) if num_classes > 0 else nn.Identity()
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward_maps(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))     # (B, 8w, H/8, W/8)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.avgpool(self.forward_maps(x)).flatten(1)             # (B, 8w)

    def forward_head(self, f: torch.Tensor) -> torch.Tensor:
        return self.fc(f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register("resnet18", example=lambda: (dict(in_chans=1, width=8, img_size=16), (torch.randn(2, 1, 16, 16),)))
def resnet18(in_chans: int = 3, num_classes: int = 10, width: int = 64, img_size: int = 32, **kw) -> ResNet:
    """ResNet-18 (CIFAR stem). Extra keys of the ConvNet API (num_features, dropout) are ignored."""
    return ResNet((2, 2, 2, 2), in_chans, num_classes, width, img_size)
