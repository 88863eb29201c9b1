"""2D -> 3D inflation: the inflated backbone reproduces our 2D ResNet (DESIGN §2)."""

import pytest
import torch
from torch import nn

from glimpse_ros.config import ModelConfig
from glimpse_ros.model.backbone import InflatedResNet
from glimpse_ros.model.inflate import inflate_state_dict, load_inflated, read_state_dict
from glimpse_ros.model.resnet2d import ResNet2d, resnet50_2d

TOL = 1e-4


def randomise_bn(sd: dict, seed: int = 0) -> dict:
    """Give every BatchNorm non-trivial statistics and affine parameters (in place)."""
    g = torch.Generator().manual_seed(seed)
    for key, value in sd.items():
        if key.endswith("running_var"):
            value.uniform_(0.5, 1.5, generator=g)
        elif key.endswith("running_mean"):
            value.normal_(0.0, 0.1, generator=g)
        elif value.dim() == 1 and key.endswith("weight") and not key.startswith("fc"):
            value.uniform_(0.5, 1.0, generator=g)
        elif value.dim() == 1 and key.endswith("bias") and not key.startswith("fc"):
            value.normal_(0.0, 0.1, generator=g)
    return sd


def frame_by_frame(net2d: ResNet2d, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply the 2D net to every frame of x (B, 3, T, H, W); return (Z, c) in the 3D layout."""
    b, _, t, h, w = x.shape
    frames = x.permute(0, 2, 1, 3, 4).reshape(b * t, 3, h, w)  # (B*T, 3, H, W)
    f3, f4 = net2d.forward_features(frames)
    z = f4.reshape(b, t, *f4.shape[1:]).permute(0, 2, 1, 3, 4)  # (B, D, T, h, w)
    c = f3.mean(dim=(2, 3)).reshape(b, t, -1)  # (B, T, Dc)
    return z, c


def max_diff(a: tuple[torch.Tensor, ...], b: tuple[torch.Tensor, ...]) -> float:
    """Largest absolute difference over matching tensors."""
    return max((x - y).abs().max().item() for x, y in zip(a, b))


@pytest.fixture(scope="module")
def r50():
    """Our 2D ResNet-50 (random weights, random BN stats) and an empty inflated ResNet-50."""
    torch.manual_seed(0)
    net2d = resnet50_2d().eval()
    randomise_bn(net2d.state_dict())
    net3d = InflatedResNet(ModelConfig()).eval()
    return net2d, net3d


@pytest.fixture(scope="module")
def clips():
    """A random moving clip and a static clip (one frame repeated), (2, 3, 4, 64, 64)."""
    g = torch.Generator().manual_seed(1)
    moving = torch.randn(2, 3, 4, 64, 64, generator=g)
    static = moving[:, :, :1].repeat(1, 1, 4, 1, 1)
    return moving, static


@torch.no_grad()
def test_center_inflation_equals_2d_frame_by_frame(r50, clips):
    """Center-inflated ResNet-50 == 2D ResNet-50 per frame."""
    net2d, net3d = r50
    moving, _ = clips
    net3d.load_state_dict(inflate_state_dict(net2d.state_dict(), net3d.state_dict(), "center"))
    out3d = net3d(moving)
    ref = frame_by_frame(net2d, moving)
    assert out3d[0].shape == ref[0].shape and out3d[1].shape == ref[1].shape
    assert out3d[0].abs().max() > 0.1  # not a degenerate all-zero comparison
    assert max_diff(out3d, ref) < TOL


@torch.no_grad()
def test_mean_inflation_equals_2d_on_static_clip_only(r50, clips):
    """Mean inflation == 2D on a static clip, not on a moving one."""
    net2d, net3d = r50
    moving, static = clips
    net3d.load_state_dict(inflate_state_dict(net2d.state_dict(), net3d.state_dict(), "mean"))
    assert max_diff(net3d(static), frame_by_frame(net2d, static)) < TOL
    assert max_diff(net3d(moving), frame_by_frame(net2d, moving)) > 1e-2


def test_kernels_are_inflated_as_specified():
    """Center puts the kernel in the middle slice; mean spreads it."""
    net2d = ResNet2d((1, 1, 1, 1), 8)
    target = InflatedResNet(ModelConfig.small()).state_dict()
    w2d = net2d.state_dict()["layer2.0.conv2.weight"]  # (16, 16, 3, 3)
    center = inflate_state_dict(net2d.state_dict(), target, "center")["layer2.0.conv2.weight"]
    mean = inflate_state_dict(net2d.state_dict(), target, "mean")["layer2.0.conv2.weight"]
    assert center.shape == (16, 16, 3, 3, 3)
    assert torch.equal(center[:, :, 1], w2d) and not center[:, :, [0, 2]].any()
    assert torch.allclose(mean.sum(dim=2), w2d, atol=1e-6)
    assert torch.allclose(mean[:, :, 0], mean[:, :, 2])


def test_bad_state_dicts_raise():
    """Wrong shapes, missing or extra keys and bad modes raise, naming the key."""
    sd = ResNet2d((1, 1, 1, 1), 8).state_dict()
    target = InflatedResNet(ModelConfig.small()).state_dict()
    wrong = dict(sd, **{"layer1.0.conv2.weight": torch.zeros(8, 8, 5, 5)})
    shapes = r"layer1\.0\.conv2\.weight.*\(8, 8, 5, 5\).*\(8, 8, 3, 3, 3\)"
    with pytest.raises(ValueError, match=shapes):
        inflate_state_dict(wrong, target, "center")
    wrong_bn = dict(sd, **{"bn1.running_mean": torch.zeros(9)})
    with pytest.raises(ValueError, match=r"bn1\.running_mean.*\(9,\).*\(8,\)"):
        inflate_state_dict(wrong_bn, target, "mean")
    missing = {k: v for k, v in sd.items() if k != "layer3.0.bn2.weight"}
    with pytest.raises(ValueError, match=r"layer3\.0\.bn2\.weight.*missing"):
        inflate_state_dict(missing, target, "center")
    with pytest.raises(ValueError, match="layer5"):
        inflate_state_dict(dict(sd, **{"layer5.0.conv1.weight": torch.zeros(1)}), target, "center")
    with pytest.raises(ValueError, match="mode"):
        inflate_state_dict(sd, target, "middle")
    # A ResNet-50 checkpoint does not fit the small backbone: the first key in order is reported.
    with pytest.raises(ValueError, match=r"conv1\.weight.*\(64, 3, 7, 7\).*\(8, 3, 1, 7, 7\)"):
        inflate_state_dict(resnet50_2d().state_dict(), target, "center")


def test_old_checkpoint_without_num_batches_tracked_loads():
    """Pre-1.0 torchvision files lack num_batches_tracked."""
    sd = {k: v for k, v in ResNet2d((1, 1, 1, 1), 8).state_dict().items()
          if not k.endswith("num_batches_tracked")}
    target = InflatedResNet(ModelConfig.small()).state_dict()
    assert set(inflate_state_dict(sd, target, "center")) == set(target)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
@torch.no_grad()
def test_load_inflated_from_file(tmp_path, suffix):
    """A torch.save / safetensors 2D file loads and reproduces the 2D net."""
    torch.manual_seed(2)
    net2d = ResNet2d((1, 1, 1, 1), 8).eval()
    sd = randomise_bn(net2d.state_dict(), seed=3)
    path = tmp_path / f"resnet2d{suffix}"
    if suffix == ".pth":
        torch.save(sd, path)
    else:
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    net3d = InflatedResNet(ModelConfig.small()).eval()
    report = load_inflated(net3d, path, mode="center")
    assert report.ignored == ["fc.bias", "fc.weight"]
    assert set(report.loaded) == set(net3d.state_dict()) and not report.kept
    x = torch.randn(1, 3, 5, 64, 64)
    assert max_diff(net3d(x), frame_by_frame(net2d, x)) < TOL


def test_read_state_dict_unwraps_and_refuses_pickled_objects(tmp_path):
    """Wrappers are unwrapped; pickled objects are refused."""
    sd = ResNet2d((1, 1, 1, 1), 8).state_dict()
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}, "epoch": 3}, wrapped)
    assert set(read_state_dict(wrapped)) == set(sd)
    pickled = tmp_path / "module.pth"
    torch.save(nn.Linear(2, 2), pickled)  # a whole pickled module: must not be unpickled
    with pytest.raises(ValueError, match="module.pth"):
        read_state_dict(pickled)
    with pytest.raises(ValueError, match="no such file"):
        read_state_dict(tmp_path / "absent.pth")
    (tmp_path / "weights.npz").write_bytes(b"")
    with pytest.raises(ValueError, match="suffix"):
        read_state_dict(tmp_path / "weights.npz")
