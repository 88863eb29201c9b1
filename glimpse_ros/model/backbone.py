"""Global model f: a bottleneck ResNet inflated to 3D that keeps every frame (DESIGN §2).

Parameter names are those of :mod:`glimpse_ros.model.resnet2d` (torchvision's), so a 2D
checkpoint maps key to key onto this network (:mod:`glimpse_ros.model.inflate`). There is no
temporal stride or pooling anywhere: a clip of T frames gives T feature maps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from glimpse_ros.config import ModelConfig
from glimpse_ros.model.resnet2d import EXPANSION


@dataclass(frozen=True)
class StageSpec:
    """Kernel choices of one residual stage."""

    stride: int                           # spatial stride of the stage's first block (time: 1)
    conv2_kernel: tuple[int, int, int]    # (kt, kh, kw) of every bottleneck conv2 in the stage
    temporal_padding: str = "replicate"   # how conv2 pads time: "replicate" or "zeros"


# Stem: a 2D conv applied per frame, then a per-frame max-pool (no temporal reduction).
STEM_KERNEL = (1, 7, 7)
STEM_STRIDE = (1, 2, 2)
STEM_PADDING = (0, 3, 3)
POOL_KERNEL = (1, 3, 3)
POOL_STRIDE = (1, 2, 2)
POOL_PADDING = (0, 1, 1)

# Per-stage table (DESIGN §2: every bottleneck conv2 is 3x3x3, strides (1, s, s)).
STAGES: dict[str, StageSpec] = {
    "layer1": StageSpec(stride=1, conv2_kernel=(3, 3, 3)),
    "layer2": StageSpec(stride=2, conv2_kernel=(3, 3, 3)),
    "layer3": StageSpec(stride=2, conv2_kernel=(3, 3, 3)),
    "layer4": StageSpec(stride=2, conv2_kernel=(3, 3, 3)),
}


class TimePaddedConv3d(nn.Conv3d):
    """Conv3d padding space with zeros and time as chosen (parameters are a plain Conv3d's).

    Departure from I3D and the released code, which zero-pad time: by default we replicate the
    first and last frame. A ``mean``-inflated network is then exactly the 2D network on a static
    clip at every frame (with zeros the border frames see a darker neighbour, and after 16 blocks
    all 8 frames of a window are affected), and the first/last frames of a short streaming window
    are not attenuated. A ``center``-inflated network is unaffected (its side taps are zero).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int, int],
                 stride: tuple[int, int, int], temporal_padding: str) -> None:
        """Build the conv; spatial padding is kh//2, kw//2, temporal padding kt//2 frames."""
        if temporal_padding not in ("replicate", "zeros"):
            raise ValueError(f"temporal_padding: {temporal_padding!r} is not replicate or zeros")
        kt, kh, kw = kernel
        replicate = temporal_padding == "replicate"
        super().__init__(in_channels, out_channels, kernel, stride=stride,
                         padding=(0 if replicate else kt // 2, kh // 2, kw // 2), bias=False)
        self.time_pad = kt // 2
        self.replicate = replicate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Convolve (B, Cin, T, H, W) into (B, Cout, T, H/s, W/s)."""
        if self.replicate and self.time_pad > 0:
            p = self.time_pad
            # Slice + concat rather than F.pad(mode="replicate"): exports to plain ONNX ops that
            # every engine supports.
            x = torch.cat([x[:, :, :1]] * p + [x] + [x[:, :, -1:]] * p,
                          dim=2)  # (B, Cin, T+2p, H, W)
        return super().forward(x)


class Bottleneck3d(nn.Module):
    """Inflated bottleneck: 1x1x1 -> conv2 (kt x 3 x 3, stride (1,s,s)) -> 1x1x1, plus shortcut."""

    def __init__(self, inplanes: int, planes: int, stride: int, spec: StageSpec) -> None:
        """Build one block (``planes`` inner width, ``4 * planes`` outputs)."""
        super().__init__()
        outplanes = planes * EXPANSION
        self.conv1 = nn.Conv3d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = TimePaddedConv3d(planes, planes, spec.conv2_kernel, (1, stride, stride),
                                      spec.temporal_padding)
        self.bn2 = nn.BatchNorm3d(planes)
        self.conv3 = nn.Conv3d(planes, outplanes, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(outplanes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or inplanes != outplanes:
            self.downsample = nn.Sequential(
                nn.Conv3d(inplanes, outplanes, 1, stride=(1, stride, stride), bias=False),
                nn.BatchNorm3d(outplanes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (B, inplanes, T, H, W) to (B, 4*planes, T, H/s, W/s)."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class InflatedResNet(nn.Module):
    """Inflated ResNet (ResNet-50 default): Z = layer4, c = spatial mean of layer3."""

    def __init__(self, cfg: ModelConfig) -> None:
        """Build from ``cfg.backbone_layers`` (blocks per stage) and ``cfg.backbone_width``."""
        super().__init__()
        width = cfg.backbone_width
        self.feature_dim = cfg.feature_dim
        self.context_dim = cfg.context_dim
        self.conv1 = nn.Conv3d(3, width, STEM_KERNEL, stride=STEM_STRIDE, padding=STEM_PADDING,
                               bias=False)
        self.bn1 = nn.BatchNorm3d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d(POOL_KERNEL, stride=POOL_STRIDE, padding=POOL_PADDING)
        inplanes = width
        for i, ((name, spec), blocks) in enumerate(zip(STAGES.items(), cfg.backbone_layers)):
            planes = width * 2 ** i
            stage = []
            for b in range(blocks):
                stage.append(Bottleneck3d(inplanes, planes, spec.stride if b == 0 else 1, spec))
                inplanes = planes * EXPANSION
            self.add_module(name, nn.Sequential(*stage))
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the clip.

        Args:
            x: Normalised clip (B, 3, T, H, W); H and W multiples of 32 give exact H/32, W/32.

        Returns:
            Z (B, feature_dim, T, H/32, W/32) and c (B, T, context_dim).
        """
        # Shape check skipped while tracing for export (static there, and avoids trace warnings).
        if not torch.jit.is_tracing() and (x.dim() != 5 or x.shape[1] != 3):
            raise ValueError(f"x: expected (B, 3, T, H, W), got {tuple(x.shape)}")
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, w, T, H/4, W/4)
        x = self.layer2(self.layer1(x))                         # (B, 8w, T, H/8, W/8)
        f3 = self.layer3(x)                                     # (B, 16w, T, H/16, W/16)
        z = self.layer4(f3)                                     # (B, 32w, T, H/32, W/32)
        c = f3.mean(dim=(3, 4)).transpose(1, 2)                 # (B, T, 16w)
        return z, c


__all__ = ["InflatedResNet", "Bottleneck3d", "TimePaddedConv3d", "StageSpec", "STAGES"]
