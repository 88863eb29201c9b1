"""Batch norms folded into the convs compute what the unfolded backbone computes (eval mode)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from glimpse_ros.config import ModelConfig
from glimpse_ros.model.bn_fold import fold_batchnorm
from runtime_fixtures import random_backbone

REL_TOL = 1e-5  # float32 rounding of the scaled weights


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("padding", ["causal", "symmetric"])
def test_folded_clip_forward_equals_the_batch_norms(padding):
    backbone = random_backbone(ModelConfig.small(temporal_padding=padding))
    folded = fold_batchnorm(backbone)
    assert not any(isinstance(m, nn.BatchNorm3d) for m in folded.modules())
    assert sum(isinstance(m, nn.BatchNorm3d) for m in backbone.modules()) > 0  # untouched
    x = torch.randn(1, 3, 8, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        z, c = backbone(x)
        zf, cf = folded(x)
    assert _rel(zf, z) < REL_TOL and _rel(cf, c) < REL_TOL
    # The statistics matter (random_backbone sets them): ignoring them is far off.
    bare = fold_batchnorm(backbone)
    for m in backbone.modules():
        if isinstance(m, nn.BatchNorm3d):
            m.running_mean.zero_()
            m.running_var.fill_(1.0)
    with torch.no_grad():
        assert _rel(bare(x)[0], backbone(x)[0]) > 1e-2


def test_folded_step_equals_the_batch_norms_and_carries_each_bias_once():
    """Stepping from a fresh state: outputs equal the unfolded step's at every frame.

    A bias added to every tap of a temporal conv would count it three times per output and make
    the outputs differ from the first frame on.
    """
    backbone = random_backbone(ModelConfig.small(temporal_padding="causal"))
    folded = fold_batchnorm(backbone)
    frames = torch.randn(6, 1, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    state = folded_state = None
    with torch.no_grad():
        for frame in frames:
            z, c, state = backbone.step(frame, state)
            zf, cf, folded_state = folded.step(frame, folded_state)
            assert _rel(zf, z) < REL_TOL and _rel(cf, c) < REL_TOL


def test_refuses_a_norm_without_running_statistics():
    backbone = random_backbone(ModelConfig.small(temporal_padding="causal"))
    backbone.bn1 = nn.BatchNorm3d(backbone.bn1.num_features, track_running_stats=False)
    with pytest.raises(ValueError, match="running statistics"):
        fold_batchnorm(backbone)
