"""The causal step's 2D kernels equal the 3D layers they stand for (torch's conv3d/max_pool3d)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from glimpse_ros.model.frame_ops import conv_frame, conv_window, pool_frame


@pytest.mark.parametrize("stride, kernel", [(1, 1), (2, 1), (2, 7), (1, 3)])
def test_conv_frame_equals_conv3d(stride, kernel):
    torch.manual_seed(0)
    conv = nn.Conv3d(6, 5, (1, kernel, kernel), stride=(1, stride, stride),
                     padding=(0, kernel // 2, kernel // 2), bias=False)
    x = torch.randn(2, 6, 1, 13, 11)
    assert torch.allclose(conv_frame(conv, x), conv(x), atol=1e-5)


@pytest.mark.parametrize("stride", [1, 2])
def test_conv_window_equals_conv3d_on_the_window(stride):
    """Channel stacking must pair each weight tap with its own (channel, frame)."""
    torch.manual_seed(1)
    conv = nn.Conv3d(4, 3, (3, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1), bias=False)
    window = torch.randn(2, 4, 3, 9, 10)
    want = conv(window)  # (B, 3, 1, H', W')
    assert want.shape[2] == 1
    assert torch.allclose(conv_window(conv, window), want, atol=1e-5)
    # Swapping two frames of the window changes the result (the frame order is not ignored).
    swapped = window[:, :, [2, 1, 0]]
    assert not torch.allclose(conv_window(conv, swapped), want, atol=1e-3)


def test_pool_frame_equals_max_pool3d():
    pool = nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
    x = torch.randn(1, 3, 1, 15, 12)
    assert torch.equal(pool_frame(pool, x), pool(x))


def test_refuses_layers_with_time_extent():
    with pytest.raises(ValueError, match="1 x k x k"):
        conv_frame(nn.Conv3d(2, 2, (3, 1, 1)), torch.randn(1, 2, 1, 4, 4))
    with pytest.raises(ValueError, match="window"):
        conv_window(nn.Conv3d(2, 2, (3, 3, 3)), torch.randn(1, 2, 2, 4, 4))
