"""End to end: the model learns on a tiny batch, gradients reach every part, default shapes."""

import pytest
import torch

from glimpse_ros.config import ModelConfig
from glimpse_ros.model.glimpse_clouds import GlimpseClouds
from glimpse_ros.model.losses import total_loss


def _batch(cfg: ModelConfig, batch: int = 2, frames: int = 4, size: int = 64):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, frames, size, size, generator=gen)
    labels = torch.arange(batch) % cfg.num_classes
    joints = torch.rand(batch, frames, cfg.num_bodies, cfg.num_joints, 2, generator=gen) * 2 - 1
    mask = torch.rand(batch, frames, cfg.num_bodies, cfg.num_joints, generator=gen) > 0.3
    mask[:, :, 1] = False  # one person only
    return x, labels, joints, mask


def test_adam_steps_lower_the_loss_and_every_part_gets_a_gradient() -> None:
    """A few Adam steps reduce the total loss; all head/backbone parameters receive gradients."""
    torch.manual_seed(0)
    cfg = ModelConfig.small(num_classes=4)
    model = GlimpseClouds(cfg).train()
    x, labels, joints, mask = _batch(cfg, frames=3, size=48)  # Z is 2x2: glimpses still move
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for step in range(4):
        opt.zero_grad()
        loss, _ = total_loss(model(x), labels, joints, mask)
        loss.backward()
        if step == 0:
            missing = [name for name, p in model.named_parameters()
                       if not name.startswith("global_fc.")
                       and (p.grad is None or float(p.grad.abs().sum()) == 0.0)]
            assert missing == []
            assert float(model.head.locator.query.weight.grad.abs().sum()) > 0
            assert float(model.head.locator.key.weight.grad.abs().sum()) > 0
            assert float(model.head.memory.metric.factor.grad.abs().sum()) > 0
            assert float(model.head.memory.initial_logits.grad.abs().sum()) > 0
            assert all(p.grad is None for p in model.global_fc.parameters())
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.9 * losses[0], losses


def test_global_only_trains_the_global_classifier_not_the_head() -> None:
    """Stage-1 loss reaches global_fc, the pose head and the backbone, not the recurrent head."""
    torch.manual_seed(0)
    cfg = ModelConfig.small(num_classes=4)
    model = GlimpseClouds(cfg).train()
    x, labels, joints, mask = _batch(cfg, frames=2, size=32)
    loss, _ = total_loss(model(x, global_only=True), labels, joints, mask, global_only=True)
    loss.backward()
    assert float(model.global_fc.weight.grad.abs().sum()) > 0
    assert float(model.pose_head.linear.weight.grad.abs().sum()) > 0
    assert float(model.backbone.conv1.weight.grad.abs().sum()) > 0
    assert all(p.grad is None for p in model.head.parameters())


@pytest.mark.slow
def test_default_config_shapes() -> None:
    """ResNet-50 default: (1, 3, 8, 224, 224) -> logits (1, 60), glimpses (1, 8, 3, 4)."""
    torch.manual_seed(0)
    model = GlimpseClouds(ModelConfig()).eval()
    with torch.inference_mode():
        out = model(torch.randn(1, 3, 8, 224, 224))
    assert out.logits.shape == (1, 60) and out.glimpses.shape == (1, 8, 3, 4)
    assert out.pose.shape == (1, 8, 2, 25, 2) and bool(torch.isfinite(out.logits).all())
    assert bool(((out.glimpses[..., 2:] > 0) & (out.glimpses[..., 2:] < 1)).all())
