"""Global model f: a bottleneck ResNet inflated to 3D that keeps every frame (DESIGN §2).

Parameter names are those of :mod:`glimpse_ros.model.resnet2d` (torchvision's), so a 2D
checkpoint maps key to key onto this network (:mod:`glimpse_ros.model.inflate`). There is no
temporal stride or pooling anywhere: a clip of T frames gives T feature maps.

Time alignment (``ModelConfig.temporal_padding``, DESIGN §3): ``symmetric`` convs see
``t-1, t, t+1`` (the paper); ``causal`` convs see ``t-2, t-1, t``. A causal network can step one
frame at a time (:meth:`InflatedResNet.step`, continual inference as in CoX3D / MoViNet stream
buffers): each temporal conv keeps what its last ``kt - 1`` input frames contribute to its next
outputs (partial sums of its taps) as explicit state, and
stepping frames from a fresh state equals the clip forward on the same frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from torch import nn

from glimpse_ros.config import ModelConfig
from glimpse_ros.model.frame_ops import bn_frame, conv_frame, pool_frame
from glimpse_ros.model.resnet2d import EXPANSION
from glimpse_ros.model.time_conv import TimePaddedConv3d


@dataclass(frozen=True)
class StageSpec:
    """Kernel choices of one residual stage."""

    stride: int                           # spatial stride of the stage's first block (time: 1)
    conv2_kernel: tuple[int, int, int]    # (kt, kh, kw) of every bottleneck conv2 in the stage
    # How conv2 fills the frames before the sequence start (and, when symmetric, after its end):
    # "replicate" or "zeros". Alignment (symmetric/causal) is ModelConfig.temporal_padding.
    temporal_padding: str = "replicate"


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


class Bottleneck3d(nn.Module):
    """Inflated bottleneck: 1x1x1 -> conv2 (kt x 3 x 3, stride (1,s,s)) -> 1x1x1, plus shortcut."""

    def __init__(self, inplanes: int, planes: int, stride: int, spec: StageSpec,
                 causal: bool = False) -> None:
        """Build one block (``planes`` inner width, ``4 * planes`` outputs)."""
        super().__init__()
        outplanes = planes * EXPANSION
        self.conv1 = nn.Conv3d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = TimePaddedConv3d(planes, planes, spec.conv2_kernel, (1, stride, stride),
                                      spec.temporal_padding, causal)
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

    def step(self, x: torch.Tensor, state: Optional[Sequence[torch.Tensor]],
             fresh: Optional[torch.Tensor] = None
             ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """One frame (B, inplanes, H, W) -> (B, 4*planes, H/s, W/s) and conv2's new state.

        The layers run as 2D operators on 4D tensors (:mod:`glimpse_ros.model.frame_ops`).
        """
        identity = (x if self.downsample is None
                    else bn_frame(self.downsample[1], conv_frame(self.downsample[0], x)))
        out = self.relu(bn_frame(self.bn1, conv_frame(self.conv1, x)))
        out, state = self.conv2.step(out, state, fresh)
        out = self.relu(bn_frame(self.bn2, out))
        out = bn_frame(self.bn3, conv_frame(self.conv3, out))
        return self.relu(out + identity), state


@dataclass
class BackboneState:
    """What a causal backbone carries from one frame to the next (one stream per batch row).

    Attributes:
        buffers: per temporal conv (``conv2`` of every block, in network order), what its last
            ``kt - 1`` input frames contribute to its next ``kt - 1`` outputs: ``kt - 1`` partial
            sums ``(B, Cout, H_out, W_out)`` each (``TimePaddedConv3d.step``), flattened in
            that order (ResNet-50: 16 convs, 32 tensors).
    """

    buffers: tuple[torch.Tensor, ...]

    def detach(self) -> "BackboneState":
        """Return a copy cut from the autograd graph."""
        return BackboneState(tuple(b.detach() for b in self.buffers))


class InflatedResNet(nn.Module):
    """Inflated ResNet (ResNet-50 default): Z = layer4, c = spatial mean of layer3."""

    def __init__(self, cfg: ModelConfig) -> None:
        """Build from ``cfg.backbone_layers``, ``cfg.backbone_width``, ``cfg.temporal_padding``."""
        super().__init__()
        width = cfg.backbone_width
        self.feature_dim = cfg.feature_dim
        self.context_dim = cfg.context_dim
        self.causal = cfg.causal
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
                stage.append(Bottleneck3d(inplanes, planes, spec.stride if b == 0 else 1, spec,
                                          self.causal))
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

    def blocks(self) -> list[Bottleneck3d]:
        """Every bottleneck block in network order (the order of ``BackboneState.buffers``)."""
        return [m for m in self.modules() if isinstance(m, Bottleneck3d)]

    def _conv2_sizes(self, height: int, width: int) -> list[tuple[int, int]]:
        """``(h, w)`` at the output of every block's conv2 for ``height x width`` frames."""
        def down(n: int, kernel: int, stride: int, pad: int) -> int:
            return (n + 2 * pad - kernel) // stride + 1

        # Stem conv (k7 s2 p3) then max-pool (k3 s2 p1), as STEM_* and POOL_*.
        h = down(down(height, 7, 2, 3), 3, 2, 1)
        w = down(down(width, 7, 2, 3), 3, 2, 1)
        sizes = []
        for block in self.blocks():
            conv = block.conv2
            h, w = down(h, 3, conv.stride[1], 1), down(w, 3, conv.stride[2], 1)
            sizes.append((h, w))
        return sizes

    def state_shapes(self, batch: int, height: int, width: int) -> list[tuple[int, ...]]:
        """Shapes of ``BackboneState.buffers`` for frames of ``height x width`` pixels."""
        shapes = []
        for block, (h, w) in zip(self.blocks(), self._conv2_sizes(height, width)):
            conv = block.conv2
            shapes += [(batch, conv.out_channels, h, w)] * conv.state_frames  # at its output
        return shapes

    def feature_size(self, height: int, width: int) -> tuple[int, int]:
        """``(h, w)`` of the layer4 map Z for frames of ``height x width`` pixels."""
        return self._conv2_sizes(height, width)[-1]  # the last block's conv3, shortcut keep it

    def step(self, frame: torch.Tensor, state: Optional[BackboneState] = None
             ) -> tuple[torch.Tensor, torch.Tensor, BackboneState]:
        """Run one frame of a causal backbone.

        Args:
            frame: ``(B, 3, H, W)`` normalised frame.
            state: the state after the previous frame; None at the start of a sequence.

        Returns:
            ``(z_t (B, feature_dim, H/32, W/32), c_t (B, context_dim), new_state)``; stepping
            frames from a fresh state gives the clip forward's ``Z[:, :, t]`` and ``c[:, t]``.

        Raises:
            ValueError: on a symmetric model (frame t would need frame t+1), a frame of the wrong
                shape, or a state of another network or batch.
        """
        if not self.causal:
            raise ValueError("a backbone with temporal_padding 'symmetric' cannot step frame by "
                             "frame (each output needs the next frame); use a model built with "
                             "temporal_padding: causal, or the clip forward")
        if frame.dim() != 4 or frame.shape[1] != 3:
            raise ValueError(f"frame: expected (B, 3, H, W), got {tuple(frame.shape)}")
        n = sum(block.conv2.state_frames for block in self.blocks())
        buffers = None if state is None else list(state.buffers)
        if buffers is not None and (len(buffers) != n or buffers[0].shape[0] != frame.shape[0]):
            raise ValueError(f"state: {len(buffers)} buffers of batch {buffers[0].shape[0]}, "
                             f"expected {n} of the frame's batch {frame.shape[0]}")
        z, c, new = self.step_buffers(frame, buffers)
        return z, c, BackboneState(tuple(new))

    def step_buffers(self, frame: torch.Tensor, buffers: Optional[list[torch.Tensor]],
                     fresh: Optional[torch.Tensor] = None
                     ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Tensor-only core of :meth:`step` (no checks; traced for the ONNX export).

        Args:
            frame: ``(B, 3, H, W)``.
            buffers: ``BackboneState.buffers`` (``kt - 1`` partial sums ``(B, Cout, h, w)`` per
                block, flattened), or None at the start of a sequence.
            fresh: optional ``(B,)`` bool; rows where a sequence starts ignore their buffers.

        Returns:
            ``(z_t (B, D, H/32, W/32), c_t (B, Dc), new buffers)``.
        """
        # 4D from the frame to Z: a time axis between 2D layers costs layout conversions.
        x = pool_frame(self.maxpool, self.relu(bn_frame(self.bn1, conv_frame(self.conv1, frame))))
        # x: (B, w, H/4, W/4)
        new: list[torch.Tensor] = []
        f3 = x
        for name in STAGES:
            for block in getattr(self, name):
                k = block.conv2.state_frames
                own = None if buffers is None else buffers[len(new):len(new) + k]
                x, buf = block.step(x, own, fresh)
                new.extend(buf)
            if name == "layer3":
                f3 = x                                          # (B, 16w, H/16, W/16)
        c = f3.mean(dim=(2, 3))                                 # (B, 16w)
        return x, c, new                                        # (B, 32w, H/32, W/32)


__all__ = ["BackboneState", "InflatedResNet", "Bottleneck3d", "StageSpec", "STAGES"]
