"""Inflated ResNet backbone: shapes, T kept, parameter names (DESIGN §2)."""

import pytest
import torch

from glimpse_ros.config import ModelConfig
from glimpse_ros.model.backbone import STAGES, InflatedResNet
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


def test_every_conv2_is_3x3x3_and_time_is_never_strided():
    """Stem 1x7x7, conv2 3x3x3, no temporal stride."""
    net = InflatedResNet(ModelConfig.small())
    assert all(spec.conv2_kernel == (3, 3, 3) for spec in STAGES.values())
    assert net.conv1.kernel_size == (1, 7, 7) and net.maxpool.kernel_size == (1, 3, 3)
    for m in net.modules():
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
