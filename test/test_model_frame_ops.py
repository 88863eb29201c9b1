"""The causal step's 2D kernels equal the 3D layers they stand for (torch's conv3d/max_pool3d)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from glimpse_ros.model.frame_ops import bn_frame, conv_frame, conv_taps, pool_frame


@pytest.mark.parametrize("stride, kernel", [(1, 1), (2, 1), (2, 7), (1, 3)])
def test_conv_frame_equals_conv3d(stride, kernel):
    torch.manual_seed(0)
    conv = nn.Conv3d(6, 5, (1, kernel, kernel), stride=(1, stride, stride),
                     padding=(0, kernel // 2, kernel // 2), bias=False)
    x = torch.randn(2, 6, 1, 13, 11)
    assert torch.allclose(conv_frame(conv, x[:, :, 0]), conv(x)[:, :, 0], atol=1e-5)


@pytest.mark.parametrize("stride", [1, 2])
def test_conv_taps_pair_each_tap_with_its_delay(stride):
    """Tap k (newest first) of one frame, summed over a window, gives the 3D conv's output."""
    torch.manual_seed(1)
    conv = nn.Conv3d(4, 3, (3, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1), bias=False)
    window = torch.randn(2, 4, 3, 9, 10)               # frames t-2, t-1, t
    want = conv(window)[:, :, 0]                          # (B, 3, H', W')
    # Frame t-d contributes through the tap k = d of its own taps.
    got = sum(conv_taps(conv, window[:, :, 2 - d])[d] for d in range(3))
    assert torch.allclose(got, want, atol=1e-5)
    # Pairing the delays the other way round is a different (wrong) result.
    wrong = sum(conv_taps(conv, window[:, :, d])[d] for d in range(3))
    assert not torch.allclose(wrong, want, atol=1e-3)
    taps = conv_taps(conv, window[:, :, 0])
    assert len(taps) == 3 and taps[0].shape == want.shape


def test_conv_taps_add_a_bias_to_the_newest_tap_only():
    """With a bias (a folded batch norm's) the taps of a window still sum to the 3D conv."""
    torch.manual_seed(5)
    conv = nn.Conv3d(4, 3, (3, 3, 3), padding=(0, 1, 1), bias=True)
    nn.init.uniform_(conv.bias, 1.0, 2.0)  # large against the weights' contribution
    window = torch.randn(1, 4, 3, 6, 5)
    got = sum(conv_taps(conv, window[:, :, 2 - d])[d] for d in range(3))
    assert torch.allclose(got, conv(window)[:, :, 0], atol=1e-5)


def test_pool_frame_equals_max_pool3d():
    pool = nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
    x = torch.randn(1, 3, 1, 15, 12)
    assert torch.equal(pool_frame(pool, x[:, :, 0]), pool(x)[:, :, 0])


@pytest.mark.parametrize("training", [False, True])
def test_bn_frame_equals_batchnorm3d(training):
    """Same output as the 3D module, and in training the same running-statistics update."""
    torch.manual_seed(2)
    a, b = nn.BatchNorm3d(5), nn.BatchNorm3d(5)
    for bn in (a, b):
        bn.running_mean.copy_(torch.linspace(-1, 1, 5))
        bn.running_var.copy_(torch.linspace(0.5, 2, 5))
        bn.weight.data.copy_(torch.linspace(0.5, 1.5, 5))
        bn.train(training)
    x = torch.randn(3, 5, 1, 6, 7)
    assert torch.allclose(bn_frame(a, x[:, :, 0]), b(x)[:, :, 0], atol=1e-6)
    assert torch.equal(a.running_mean, b.running_mean)
    assert training == (not torch.allclose(a.running_mean, torch.linspace(-1, 1, 5)))


def test_refuses_layers_with_time_extent():
    with pytest.raises(ValueError, match="1 x k x k"):
        conv_frame(nn.Conv3d(2, 2, (3, 1, 1)), torch.randn(1, 2, 1, 4, 4))
    with pytest.raises(ValueError, match="conv_taps"):
        conv_taps(nn.Conv3d(2, 2, (3, 3, 3), bias=False), torch.randn(1, 4, 4, 4))


def test_bn_frame_passes_a_folded_norm_through():
    x = torch.randn(1, 3, 4, 4)
    assert bn_frame(nn.Identity(), x) is x
