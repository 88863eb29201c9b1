"""One-frame evaluation of the backbone's 3D layers as 2D operations (the causal step's kernels).

A causal step feeds one frame (or, to a temporal conv, a window of ``kt`` frames) through layers
built as ``Conv3d`` / ``MaxPool3d``. Run as 3D operators on a time axis of length 1 or ``kt``,
they cost about 1.6x the same arithmetic done as 2D operators (measured on ResNet-50 at 224²:
step 180 ms vs 125 ms with torch, 2 Zen 4 cores; the clip forward costs 108 ms per frame), because
the libraries' 2D kernels are the tuned ones. So the step computes them as 2D operators on views of
the same weights (no copy, nothing to keep in sync): a ``1 x k x k`` conv is a ``k x k`` conv2d
of the frame, and a ``kt x k x k`` conv of a ``kt``-frame window is one conv2d whose input
channels are the window's ``(channel, frame)`` pairs. The exported ONNX step graph inherits this.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_frame(conv: nn.Conv3d, x: torch.Tensor) -> torch.Tensor:
    """Apply a ``1 x kh x kw`` Conv3d to one frame as a conv2d.

    Args:
        conv: the 3D conv (temporal kernel 1, no temporal padding or stride).
        x: ``(B, Cin, 1, H, W)``.

    Returns:
        ``(B, Cout, 1, H', W')``, equal to ``conv(x)``.
    """
    if conv.kernel_size[0] != 1 or conv.padding[0] != 0 or conv.stride[0] != 1:
        raise ValueError(f"conv_frame needs a 1 x k x k conv, got kernel {conv.kernel_size}")
    y = F.conv2d(x[:, :, 0], conv.weight[:, :, 0], conv.bias, conv.stride[1:], conv.padding[1:],
                 conv.dilation[1:], conv.groups)  # (B, Cout, H', W')
    return y.unsqueeze(2)


def conv_window(conv: nn.Conv3d, window: torch.Tensor) -> torch.Tensor:
    """Apply a ``kt x kh x kw`` Conv3d to a window of exactly ``kt`` frames as one conv2d.

    Args:
        conv: the 3D conv (no temporal padding or stride, one group).
        window: ``(B, Cin, kt, H, W)``, oldest frame first.

    Returns:
        ``(B, Cout, 1, H', W')``, equal to ``conv(window)`` (no temporal padding).
    """
    cout, cin, kt, kh, kw = conv.weight.shape
    if window.shape[2] != kt or conv.groups != 1 or conv.stride[0] != 1:
        raise ValueError(f"conv_window needs a {kt}-frame window and a plain conv, got "
                         f"{tuple(window.shape)}")
    batch, _, _, height, width = window.shape
    # (channel, frame) pairs as input channels: index c * kt + t in both input and weight.
    stacked = window.reshape(batch, cin * kt, height, width)       # (B, Cin*kt, H, W)
    weight = conv.weight.reshape(cout, cin * kt, kh, kw)            # (Cout, Cin*kt, kh, kw)
    y = F.conv2d(stacked, weight, conv.bias, conv.stride[1:], conv.padding[1:],
                 conv.dilation[1:])                                 # (B, Cout, H', W')
    return y.unsqueeze(2)


def pool_frame(pool: nn.MaxPool3d, x: torch.Tensor) -> torch.Tensor:
    """Apply a ``1 x k x k`` MaxPool3d to one frame ``(B, C, 1, H, W)`` as a max_pool2d."""
    kernel, stride, padding = (tuple(v) if isinstance(v, (tuple, list)) else (v,) * 3
                               for v in (pool.kernel_size, pool.stride, pool.padding))
    if kernel[0] != 1 or padding[0] != 0:
        raise ValueError(f"pool_frame needs a 1 x k x k pool, got kernel {kernel}")
    y = F.max_pool2d(x[:, :, 0], kernel[1:], stride[1:], padding[1:], ceil_mode=pool.ceil_mode)
    return y.unsqueeze(2)


__all__ = ["conv_frame", "conv_window", "pool_frame"]
