"""One-frame evaluation of the backbone's 3D layers as 2D operations on 4D tensors (the step).

A causal step feeds one frame (or, to a temporal conv, a window of ``kt`` frames) through layers
built as ``Conv3d`` / ``MaxPool3d`` / ``BatchNorm3d``. Run as 3D operators on a time axis of
length 1 or ``kt``, they cost about 1.6x the same arithmetic done as 2D operators (measured on
ResNet-50 at 224²: step 180 ms vs 125 ms with torch, 2 Zen 4 cores; the clip forward costs 108 ms
per frame), because the libraries' 2D kernels are the tuned ones. So the step computes them as 2D
operators on views of the same weights (no copy, nothing to keep in sync).

The step's activations are 4D ``(B, C, H, W)`` from the input frame to ``Z``: no time axis is
added or removed between layers. A 5D view of a 4D activation between two 2D convs made
OpenVINO convert every activation from its channels-last conv layout to the plain layout and
back (``Reorder`` layers: 17.6 of 119 ms of the ResNet-50 bf16 step at 224², one Zen 4 thread,
against 0.1 ms in the clip); with 4D tensors throughout the step costs about a clip / 8 in bf16.

A temporal conv (``kt x kh x kw``) applies each of its ``kt`` taps to the new frame as its own
conv2d (:func:`conv_taps`); the step keeps partial sums of the taps already applied to earlier
frames rather than the frames themselves (``TimePaddedConv3d.step``): no window is concatenated
and sliced every frame (with int8 convolutions that bookkeeping was 1.51x a clip / 8 against 1.34x
with partial sums, one thread). One conv2d with ``kt · Cout`` outputs split into the taps did the
same arithmetic, but OpenVINO runs the channel split as a reference kernel behind layout
conversions (int8 ResNet-50 step at 224², 2 Zen 4 threads, per-layer counters: split 2.2 ms and
27 reorders 2.0 ms of a 30.2 ms frame).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_frame(conv: nn.Conv3d, x: torch.Tensor) -> torch.Tensor:
    """Apply a ``1 x kh x kw`` Conv3d to one frame as a conv2d.

    Args:
        conv: the 3D conv (temporal kernel 1, no temporal padding or stride).
        x: ``(B, Cin, H, W)``.

    Returns:
        ``(B, Cout, H', W')``, equal to ``conv(x.unsqueeze(2)).squeeze(2)``.
    """
    if conv.kernel_size[0] != 1 or conv.padding[0] != 0 or conv.stride[0] != 1:
        raise ValueError(f"conv_frame needs a 1 x k x k conv, got kernel {conv.kernel_size}")
    return F.conv2d(x, conv.weight[:, :, 0], conv.bias, conv.stride[1:], conv.padding[1:],
                    conv.dilation[1:], conv.groups)  # (B, Cout, H', W')


def conv_taps(conv: nn.Conv3d, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Apply each temporal tap of a ``kt x kh x kw`` Conv3d to one frame, one conv2d per tap.

    Args:
        conv: the 3D conv (no temporal padding or stride, one group).
        x: ``(B, Cin, H, W)``.

    Returns:
        ``kt`` tensors ``(B, Cout, H', W')``, newest tap first: element ``k`` is what frame ``x``
        contributes to the output ``k`` frames later. A bias (a folded batch norm's,
        :mod:`glimpse_ros.model.bn_fold`) is added to the newest tap only, so that the sum of an
        output's ``kt`` taps carries it once, as the 3D conv's output does.
    """
    cout, cin, kt = conv.weight.shape[:3]
    if x.dim() != 4 or x.shape[1] != cin or conv.groups != 1 or conv.stride[0] != 1:
        raise ValueError(f"conv_taps needs one frame of {cin} channels and a plain conv, "
                         f"got {tuple(x.shape)}")
    # Tap k meets the frame k frames after it: weight slice kt - 1 - k, newest tap first.
    return tuple(F.conv2d(x, conv.weight[:, :, kt - 1 - k], conv.bias if k == 0 else None,
                          conv.stride[1:], conv.padding[1:], conv.dilation[1:])
                 for k in range(kt))  # each (B, Cout, H', W')


def pool_frame(pool: nn.MaxPool3d, x: torch.Tensor) -> torch.Tensor:
    """Apply a ``1 x k x k`` MaxPool3d to one frame ``(B, C, H, W)`` as a max_pool2d."""
    kernel, stride, padding = (tuple(v) if isinstance(v, (tuple, list)) else (v,) * 3
                               for v in (pool.kernel_size, pool.stride, pool.padding))
    if kernel[0] != 1 or padding[0] != 0:
        raise ValueError(f"pool_frame needs a 1 x k x k pool, got kernel {kernel}")
    return F.max_pool2d(x, kernel[1:], stride[1:], padding[1:], ceil_mode=pool.ceil_mode)


def bn_frame(bn: nn.BatchNorm3d | nn.Identity, x: torch.Tensor) -> torch.Tensor:
    """Apply a BatchNorm3d to one frame ``(B, C, H, W)``.

    In evaluation mode (the step's use, and what the ONNX export traces) this is the 4D batch
    norm with the module's statistics; in training mode the module itself runs on a 5D view, so
    its batch statistics and running averages behave exactly as on a clip of one frame. An
    ``nn.Identity`` (a batch norm folded into its conv, :mod:`glimpse_ros.model.bn_fold`)
    returns ``x``.
    """
    if isinstance(bn, nn.Identity):
        return x
    if bn.training or not bn.track_running_stats:
        return bn(x.unsqueeze(2)).squeeze(2)
    return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0,
                        bn.eps)


__all__ = ["bn_frame", "conv_frame", "conv_taps", "pool_frame"]
