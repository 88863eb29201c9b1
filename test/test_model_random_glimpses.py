"""The random-glimpse ablation switch (ModelConfig.glimpse_locations)."""

from __future__ import annotations

import pytest
import torch

from glimpse_ros.config import ModelConfig
from glimpse_ros.model.glimpse_clouds import GlimpseClouds


def _model(**kw) -> GlimpseClouds:
    torch.manual_seed(0)
    return GlimpseClouds(ModelConfig.small(num_classes=5, frames=3, crop_size=64,
                                           resize_size=64, **kw)).eval()


def test_random_glimpses_follow_their_seed_not_the_input():
    """Boxes are the seeded uniform draws (frame by frame, glimpse by glimpse), any clip."""
    model = _model(glimpse_locations="random", glimpse_seed=7)
    x = torch.randn(2, 3, 3, 64, 64)
    with torch.no_grad():
        out = model(x)
    gen = torch.Generator().manual_seed(7)
    want = torch.empty(2, 3, 3, 4)                                  # (B, T, G, 4)
    for t in range(3):
        for g in range(3):
            u = torch.rand(2, 4, generator=gen)
            want[:, t, g] = torch.stack([u[:, 0] * 2 - 1, u[:, 1] * 2 - 1, u[:, 2], u[:, 3]], 1)
    torch.testing.assert_close(out.glimpses, want)
    # A fresh model with the same seed on another clip draws the same boxes; another seed not.
    with torch.no_grad():
        again = _model(glimpse_locations="random", glimpse_seed=7)(torch.randn(2, 3, 3, 64, 64))
        other = _model(glimpse_locations="random", glimpse_seed=8)(x)
    torch.testing.assert_close(again.glimpses, want)
    assert not torch.allclose(other.glimpses, want)
    assert torch.isfinite(out.logits).all()


def test_random_glimpses_train_the_rest_of_the_head():
    """No gradient reaches the location head; the workers still learn from the random crops."""
    model = _model(glimpse_locations="random").train()
    out = model(torch.randn(2, 3, 3, 64, 64))
    out.logits.sum().backward()
    assert all(p.grad is None for p in model.head.locator.parameters())
    assert model.head.workers.parameters().__next__().grad.abs().sum() > 0
    assert not out.glimpses.requires_grad


def test_learned_glimpses_depend_on_the_input():
    """The default keeps the learned locator: glimpses change with the clip."""
    model = _model()
    with torch.no_grad():
        a = model(torch.randn(1, 3, 3, 64, 64)).glimpses
        b = model(torch.randn(1, 3, 3, 64, 64)).glimpses
    assert not torch.allclose(a, b)


def test_unknown_location_mode_names_the_key():
    """A typo fails at construction, naming model.glimpse_locations."""
    with pytest.raises(ValueError, match="model.glimpse_locations"):
        ModelConfig(glimpse_locations="randm")
