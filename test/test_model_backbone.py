"""Inflated ResNet backbone: shapes, T kept, parameter names (DESIGN §2)."""

import pytest
import torch

from glimpse_ros.config import ModelConfig
from glimpse_ros.model.backbone import InflatedResNet
from glimpse_ros.model.resnet2d import ResNet2d, resnet50_2d


@pytest.fixture(scope="module")
def r50():
    """Randomly initialised inflated ResNet-50 in eval mode."""
    torch.manual_seed(0)
    return InflatedResNet(ModelConfig()).eval()


@pytest.mark.parametrize("frames", [8, 4])
@torch.no_grad()
def test_resnet50_keeps_time(r50, frames):
    """ResNet-50 at 224 px: Z (1, 2048, T, 7, 7), c (1, T, 1024)."""
    z, c = r50(torch.randn(1, 3, frames, 224, 224))
    assert z.shape == (1, 2048, frames, 7, 7)
    assert c.shape == (1, frames, 1024)
    assert torch.isfinite(z).all() and torch.isfinite(c).all()


@pytest.mark.parametrize("frames", [8, 4, 1])
@torch.no_grad()
def test_small_variant_shapes(frames):
    """Small variant: channels from the config, T kept, spatial ceil(H / 32)."""
    cfg = ModelConfig.small()
    net = InflatedResNet(cfg).eval()
    z, c = net(torch.randn(2, 3, frames, 64, 64))
    assert z.shape == (2, cfg.feature_dim, frames, 2, 2)
    assert c.shape == (2, frames, cfg.context_dim)
    z, _ = net(torch.randn(1, 3, frames, cfg.crop_size, cfg.crop_size))
    assert z.shape[2:] == (frames, 4, 4)  # 112 px: ceil(112 / 32)


@torch.no_grad()
def test_context_is_spatial_mean_of_layer3():
    """The context c is the spatial mean of layer3, laid out (B, T, Dc)."""
    net = InflatedResNet(ModelConfig.small()).eval()
    x = torch.randn(1, 3, 3, 64, 64)
    f3 = net.layer3(net.layer2(net.layer1(net.maxpool(net.relu(net.bn1(net.conv1(x)))))))
    _, c = net(x)
    assert torch.allclose(c, f3.mean(dim=(3, 4)).transpose(1, 2), atol=1e-6)


def test_parameter_names_match_2d_resnet():
    """Backbone keys are the 2D ResNet keys minus fc."""
    keys3d = set(InflatedResNet(ModelConfig()).state_dict())
    keys2d = set(resnet50_2d().state_dict())
    assert keys2d - keys3d == {"fc.weight", "fc.bias"} and keys3d <= keys2d
    small2d = set(ResNet2d((1, 1, 1, 1), 8).state_dict()) - {"fc.weight", "fc.bias"}
    assert set(InflatedResNet(ModelConfig.small()).state_dict()) == small2d


def test_built_kernels_are_the_designed_ones(r50):
    """The modules actually built have the designed kernels, strides and padding.

    Stem 1x7x7/s2, pool 1x3x3/s2, conv2 3x3x3 with stride (1, s, s) on the first block of layers
    2-4, 1x1x1 conv1/conv3/shortcut, no temporal stride anywhere.
    """
    assert (r50.conv1.kernel_size, r50.conv1.stride, r50.conv1.padding) == (
        (1, 7, 7), (1, 2, 2), (0, 3, 3))
    assert (r50.maxpool.kernel_size, r50.maxpool.stride, r50.maxpool.padding) == (
        (1, 3, 3), (1, 2, 2), (0, 1, 1))
    blocks = 0
    for name, first_stride, depth in (("layer1", 1, 3), ("layer2", 2, 4), ("layer3", 2, 6),
                                      ("layer4", 2, 3)):
        stage = getattr(r50, name)
        assert len(stage) == depth
        for b, block in enumerate(stage):
            stride = first_stride if b == 0 else 1
            assert block.conv2.kernel_size == (3, 3, 3), (name, b)
            assert block.conv2.stride == (1, stride, stride), (name, b)
            assert block.conv2.padding[1:] == (1, 1), (name, b)
            assert block.conv1.kernel_size == block.conv3.kernel_size == (1, 1, 1)
            if block.downsample is not None:
                assert block.downsample[0].kernel_size == (1, 1, 1)
                assert block.downsample[0].stride == (1, stride, stride)
            blocks += 1
    assert blocks == 16
    for m in r50.modules():
        if isinstance(m, torch.nn.Conv3d):
            assert m.stride[0] == 1


@torch.no_grad()
def test_temporal_receptive_field_spans_the_clip():
    """Changing the last frame reaches the first frame's output (4 blocks: 4 frames of context)."""
    net = InflatedResNet(ModelConfig.small()).eval()
    x = torch.randn(1, 3, 4, 64, 64)
    y = x.clone()
    y[:, :, -1] += 1.0
    z_x, _ = net(x)
    z_y, _ = net(y)
    assert (z_x[:, :, 0] - z_y[:, :, 0]).abs().max() > 0


def test_bad_input_raises():
    """A clip of the wrong rank or channel count is a caller error."""
    net = InflatedResNet(ModelConfig.small())
    with pytest.raises(ValueError, match="B, 3, T, H, W"):
        net(torch.randn(1, 3, 64, 64))
    with pytest.raises(ValueError, match="B, 3, T, H, W"):
        net(torch.randn(1, 1, 2, 64, 64))
