"""Plain 2D bottleneck ResNet whose state-dict keys are torchvision's.

This is the reference the inflated 3D backbone is tested against, and the layout of the 2D
checkpoints it is initialised from (``conv1``, ``bn1``, ``layer1.0.conv1``, ...,
``layer4.2.downsample.0``, ``fc``). It is written here (the project does not depend on
torchvision) and follows torchvision's ResNet "v1.5": the spatial stride of a stage sits on the
bottleneck's 3x3 conv.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from glimpse_ros.config import RESNET50_LAYERS

EXPANSION = 4  # bottleneck output channels = EXPANSION * inner width


class Bottleneck2d(nn.Module):
    """1x1 -> 3x3 (stride s) -> 1x1 bottleneck with identity or projection shortcut."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        """Build one block.

        Args:
            inplanes: Input channels.
            planes: Inner width; the block outputs ``planes * EXPANSION`` channels.
            stride: Spatial stride of the 3x3 conv (and of the projection shortcut).
        """
        super().__init__()
        outplanes = planes * EXPANSION
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, outplanes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(outplanes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or inplanes != outplanes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, outplanes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(outplanes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (B, inplanes, H, W) to (B, 4*planes, H/s, W/s)."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet2d(nn.Module):
    """Bottleneck ResNet (ResNet-50 by default) with torchvision parameter names."""

    def __init__(self, layers: Sequence[int] = RESNET50_LAYERS, width: int = 64,
                 num_classes: int = 1000) -> None:
        """Build the network.

        Args:
            layers: Bottleneck blocks per stage (4 stages); (3, 4, 6, 3) is ResNet-50.
            width: Stem channels and inner width of stage 1; stage s uses ``width * 2**s``.
            num_classes: Outputs of the final ``fc`` layer.
        """
        super().__init__()
        if len(layers) != 4 or any(n <= 0 for n in layers):
            raise ValueError(f"layers: need 4 positive block counts, got {tuple(layers)}")
        if width <= 0:
            raise ValueError(f"width: must be > 0, got {width}")
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        inplanes = width
        for i, blocks in enumerate(layers):
            planes = width * 2 ** i
            stride = 1 if i == 0 else 2
            stage = []
            for b in range(blocks):
                stage.append(Bottleneck2d(inplanes, planes, stride if b == 0 else 1))
                inplanes = planes * EXPANSION
            self.add_module(f"layer{i + 1}", nn.Sequential(*stage))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the layer3 and layer4 feature maps.

        Args:
            x: Images (B, 3, H, W).

        Returns:
            (layer3 (B, 16*width, H/16, W/16), layer4 (B, 32*width, H/32, W/32)).
        """
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        f3 = self.layer3(x)
        return f3, self.layer4(f3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Classify images (B, 3, H, W) into logits (B, num_classes)."""
        _, f4 = self.forward_features(x)
        return self.fc(torch.flatten(self.avgpool(f4), 1))  # (B, 32*width)


def resnet50_2d(num_classes: int = 1000) -> ResNet2d:
    """Return a randomly initialised 2D ResNet-50 (torchvision layout)."""
    return ResNet2d(RESNET50_LAYERS, 64, num_classes)


__all__ = ["Bottleneck2d", "ResNet2d", "resnet50_2d", "EXPANSION"]
