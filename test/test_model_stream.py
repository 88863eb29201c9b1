"""Causal backbone and the frame-by-frame step API (DESIGN §3, streaming backbone)."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from glimpse_ros.config import ModelConfig
from glimpse_ros.model import backbone as backbone_mod
from glimpse_ros.model.backbone import InflatedResNet
from glimpse_ros.model.time_conv import TimePaddedConv3d
from glimpse_ros.model.glimpse_clouds import GlimpseClouds
from glimpse_ros.model.inflate import inflate_state_dict
from glimpse_ros.model.resnet2d import ResNet2d

TOL = 1e-5
SIZE = 64  # small frames: (2, 2) feature maps at layer4


def randomise(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every BatchNorm non-trivial statistics and affine parameters; return eval()."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.normal_(0.0, 0.1, generator=g)
            m.running_var.uniform_(0.5, 1.5, generator=g)
            m.weight.data.uniform_(0.5, 1.5, generator=g)
            m.bias.data.normal_(0.0, 0.1, generator=g)
    return module.eval()


def causal_net(seed: int = 0) -> InflatedResNet:
    """Small causal backbone with random weights and BN statistics."""
    torch.manual_seed(seed)
    return randomise(InflatedResNet(ModelConfig.small(temporal_padding="causal")), seed)


def clip(frames: int, batch: int = 2, seed: int = 1) -> torch.Tensor:
    """Random frames, (B, 3, T, SIZE, SIZE)."""
    return torch.randn(batch, 3, frames, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def conv_by_hand(conv: TimePaddedConv3d, x: torch.Tensor, replicate: bool) -> torch.Tensor:
    """Causal conv as a sum of 2D convs over taps t-2, t-1, t (fill before the start)."""
    kt = conv.weight.shape[2]
    outs = []
    for t in range(x.shape[2]):
        y = 0
        for k in range(kt):
            src = t - (kt - 1) + k
            if src < 0 and not replicate:
                continue
            frame = x[:, :, max(src, 0)]  # (B, Cin, H, W)
            y = y + F.conv2d(frame, conv.weight[:, :, k], stride=conv.stride[1:],
                             padding=conv.padding[1:])
        outs.append(y)
    return torch.stack(outs, dim=2)  # (B, Cout, T, H', W')


@pytest.mark.parametrize("fill", ["replicate", "zeros"])
@torch.no_grad()
def test_causal_conv_sees_past_frames_only(fill):
    """Clip forward and step of one causal conv == a hand-written sum of per-tap 2D convs."""
    torch.manual_seed(0)
    conv = TimePaddedConv3d(4, 5, (3, 3, 3), (1, 2, 2), fill, causal=True)
    x = torch.randn(2, 4, 6, 9, 9)
    ref = conv_by_hand(conv, x, fill == "replicate")
    assert (conv(x) - ref).abs().max() < TOL
    state, outs = None, []
    for t in range(x.shape[2]):
        y, state = conv.step(x[:, :, t], state)   # one frame (B, Cin, H, W)
        outs.append(y)
    assert (torch.stack(outs, dim=2) - ref).abs().max() < TOL


@torch.no_grad()
def test_causal_backbone_output_ignores_future_frames():
    """Frame t's Z and c do not change when later frames change; they do when frame t does."""
    net = causal_net()
    x = clip(6)
    y = x.clone()
    y[:, :, 4:] += 1.0
    (zx, cx), (zy, cy) = net(x), net(y)
    assert (zx[:, :, :4] - zy[:, :, :4]).abs().max() == 0
    assert (cx[:, :4] - cy[:, :4]).abs().max() == 0
    assert (zx[:, :, 4] - zy[:, :, 4]).abs().max() > 1e-3
    sym = randomise(InflatedResNet(ModelConfig.small()))
    sym.load_state_dict(net.state_dict())
    assert (sym(x)[0][:, :, 3] - sym(y)[0][:, :, 3]).abs().max() > 1e-3  # symmetric looks ahead


@pytest.mark.parametrize("fill", ["replicate", "zeros"])
@pytest.mark.parametrize("frames", [1, 8, 13])
@torch.no_grad()
def test_backbone_step_equals_causal_clip(monkeypatch, fill, frames):
    """Stepping n frames from a fresh state == the causal clip forward on those n frames."""
    for name, spec in backbone_mod.STAGES.items():
        monkeypatch.setitem(backbone_mod.STAGES, name,
                            dataclasses.replace(spec, temporal_padding=fill))
    net = causal_net()
    x = clip(frames)
    z_clip, c_clip = net(x)  # (B, D, T, h, w), (B, T, Dc)
    state = None
    for t in range(frames):
        z_t, c_t, state = net.step(x[:, :, t], state)
        assert z_t.shape == z_clip[:, :, t].shape and c_t.shape == c_clip[:, t].shape
        assert (z_t - z_clip[:, :, t]).abs().max() < TOL, t
        assert (c_t - c_clip[:, t]).abs().max() < TOL, t
    assert z_clip.abs().max() > 0.1  # not a degenerate all-zero comparison
    assert [tuple(b.shape) for b in state.buffers] == net.state_shapes(2, SIZE, SIZE)


@torch.no_grad()
def test_fresh_rows_restart_their_sequence():
    """step_buffers with a fresh mask: a fresh row ignores its buffers, the others continue."""
    net = causal_net()
    x = clip(5)
    _, _, state = net.step(x[:, :, 0])
    _, _, state = net.step(x[:, :, 1], state)
    fresh = torch.tensor([True, False])
    z, c, _ = net.step_buffers(x[:, :, 2], list(state.buffers), fresh)
    z_new, c_new = net(x[:1, :, 2:3])            # row 0: a sequence starting at frame 2
    z_old, c_old = net(x[1:, :, :3])             # row 1: frames 0..2
    assert (z[0] - z_new[0, :, 0]).abs().max() < TOL and (c[0] - c_new[0, 0]).abs().max() < TOL
    assert (z[1] - z_old[0, :, 2]).abs().max() < TOL and (c[1] - c_old[0, 2]).abs().max() < TOL


@pytest.mark.parametrize("frames", [8, 13])
@torch.no_grad()
def test_model_step_equals_clip_forward(frames):
    """GlimpseClouds.step (backbone step + head step) == the clip forward, frame by frame."""
    torch.manual_seed(0)
    model = randomise(GlimpseClouds(ModelConfig.small(temporal_padding="causal", num_classes=7)))
    x = clip(frames)
    ref = model(x)
    state, outs = None, []
    for t in range(frames):
        state, out = model.step(x[:, :, t], state)
        outs.append(out)
    for field in ("logits", "glimpses", "worker_logits", "assignment"):
        got = torch.stack([getattr(o, field) for o in outs], dim=1)
        want = ref.step_logits if field == "logits" else getattr(ref, field)
        assert (got - want).abs().max() < TOL, field
    assert int(state.head.step[0]) == frames


def test_symmetric_model_refuses_to_step():
    """A symmetric backbone (or model) cannot step: frame t would need frame t+1."""
    net = InflatedResNet(ModelConfig.small()).eval()
    with pytest.raises(ValueError, match="symmetric.*cannot step"):
        net.step(torch.zeros(1, 3, SIZE, SIZE))
    model = GlimpseClouds(ModelConfig.small()).eval()
    with pytest.raises(ValueError, match="symmetric.*cannot step"):
        model.step(torch.zeros(1, 3, SIZE, SIZE))


def test_bad_step_input_raises():
    """Wrong frame rank or a state of another batch size is a caller error."""
    net = causal_net()
    with pytest.raises(ValueError, match="B, 3, H, W"):
        net.step(torch.zeros(1, 3, 2, SIZE, SIZE))
    _, _, state = net.step(torch.zeros(2, 3, SIZE, SIZE))
    with pytest.raises(ValueError, match="batch"):
        net.step(torch.zeros(1, 3, SIZE, SIZE), state)


@torch.no_grad()
def test_center_inflation_of_a_causal_net_equals_2d_frame_by_frame():
    """Causal center inflation fills the current frame's tap: the 2D net applied per frame."""
    torch.manual_seed(0)
    net2d = ResNet2d((1, 1, 1, 1), 8).eval()
    net = causal_net()
    net.load_state_dict(inflate_state_dict(net2d.state_dict(), net.state_dict(), "center",
                                           causal=True))
    x = clip(4, batch=1)
    z, c = net(x)
    for t in range(4):
        f3, f4 = net2d.forward_features(x[:, :, t])
        assert (z[:, :, t] - f4).abs().max() < 1e-4
        assert (c[:, t] - f3.mean(dim=(2, 3))).abs().max() < 1e-4


@torch.no_grad()
def test_causal_conv_without_temporal_extent_steps_with_an_empty_state():
    """A kernel of one frame in time: each output is its own frame's conv; no partial sums."""
    torch.manual_seed(3)
    conv = TimePaddedConv3d(3, 4, (1, 3, 3), (1, 1, 1), "replicate", causal=True)
    x = torch.randn(1, 3, 4, 6, 6)
    state = None
    for t in range(4):
        y, state = conv.step(x[:, :, t], state)
        assert state == ()
        assert torch.allclose(y, conv(x)[:, :, t], atol=1e-5)
