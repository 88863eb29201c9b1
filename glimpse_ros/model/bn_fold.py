"""Batch norms folded into their convolutions: an inference copy of the backbone for export.

In evaluation mode a batch norm after a convolution is a per-channel affine map,
``bn(y) = s * y + (beta - s * mean)`` with ``s = gamma / sqrt(var + eps)``, so the pair is one
convolution with weights ``s * W`` and bias ``beta - s * mean``. The ONNX exporter folds such
pairs in the clip graph, but not in the step graph, where each conv is applied to weight slices
(``frame_ops``): the step export kept 53 ``BatchNormalization`` nodes for ResNet-50, and
NNCF's int8 quantisation then rounded every conv output and every batch-norm output to 8 bits
on top of the conv inputs (57 extra quantisers, 122 in all against 101 in the clip graph).

:func:`fold_batchnorm` returns a copy whose batch norms are ``nn.Identity`` and whose convs
carry the folded weights and bias. For a temporal conv the bias goes on the newest tap only
(``frame_ops.conv_taps``), so the causal step's partial sums stay bias-free and the sum of an
output's taps carries it once. The copy computes what the original computes in evaluation mode
(float32 rounding aside); it is for inference and export only (no batch statistics to train).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from glimpse_ros.model.backbone import Bottleneck3d, InflatedResNet


def _fold(conv: nn.Conv3d, bn: nn.BatchNorm3d) -> None:
    """Fold ``bn`` (evaluation statistics) into ``conv`` in place: weight scaled, bias set."""
    if not bn.track_running_stats or bn.running_mean is None or bn.running_var is None:
        raise ValueError("a batch norm without running statistics cannot be folded")
    with torch.no_grad():
        conv.weight, conv.bias = fuse_conv_bn_weights(
            conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias)


def fold_batchnorm(backbone: InflatedResNet) -> InflatedResNet:
    """A copy of ``backbone`` in evaluation mode with every batch norm folded into its conv.

    Returns:
        The copy; ``backbone`` itself is unchanged. Its ``forward`` and ``step`` equal the
        original's in evaluation mode up to float32 rounding.
    """
    folded = copy.deepcopy(backbone).eval()
    _fold(folded.conv1, folded.bn1)
    folded.bn1 = nn.Identity()
    for block in folded.modules():
        if not isinstance(block, Bottleneck3d):
            continue
        for conv, bn in (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3")):
            _fold(getattr(block, conv), getattr(block, bn))
            setattr(block, bn, nn.Identity())
        if block.downsample is not None:
            _fold(block.downsample[0], block.downsample[1])
            block.downsample[1] = nn.Identity()
    return folded


__all__ = ["fold_batchnorm"]
