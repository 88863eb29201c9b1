"""Differentiable glimpse crop and location head."""

import pytest
import torch

from glimpse_ros.model.glimpse import GlimpseLocator, crop, glimpse_features, glimpse_theta


def _bilinear_reference(feature: torch.Tensor, glimpse: list[float],
                        out_hw: tuple[int, int]) -> torch.Tensor:
    """Paper §3.3 sampler written out: sum_mn Z(m, n) max(0, 1-|xs-n|) max(0, 1-|ys-m|)."""
    x, y, sx, sy = glimpse
    channels, height, width = feature.shape
    out_h, out_w = out_hw
    out = torch.zeros(channels, out_h, out_w, dtype=torch.float64)
    for i in range(out_h):
        for j in range(out_w):
            xt = -1.0 + 2.0 * j / (out_w - 1)
            yt = -1.0 + 2.0 * i / (out_h - 1)
            # align_corners=True: -1 and +1 are the centres of the border pixels.
            px = (sx * xt + x + 1.0) / 2.0 * (width - 1)
            py = (sy * yt + y + 1.0) / 2.0 * (height - 1)
            for m in range(height):
                for n in range(width):
                    w = max(0.0, 1.0 - abs(px - n)) * max(0.0, 1.0 - abs(py - m))
                    out[:, i, j] += w * feature[:, m, n].double()
    return out


def test_theta_layout() -> None:
    """Theta layout."""
    theta = glimpse_theta(torch.tensor([[0.1, -0.2, 0.3, 0.4]]))
    assert torch.equal(theta, torch.tensor([[[0.3, 0.0, 0.1], [0.0, 0.4, -0.2]]]))


def test_identity_glimpse_returns_the_feature_map() -> None:
    """Identity glimpse returns the feature map."""
    torch.manual_seed(0)
    feature = torch.randn(2, 5, 4, 6)
    identity = torch.tensor([[0.0, 0.0, 1.0, 1.0]] * 2)
    torch.testing.assert_close(crop(feature, identity), feature, atol=1e-6, rtol=0)
    torch.testing.assert_close(glimpse_features(feature, identity), feature.mean(dim=(2, 3)))


@pytest.mark.parametrize("glimpse,out_hw", [
    ([0.3, -0.2, 0.5, 0.4], (3, 4)),
    ([0.8, 0.5, 0.5, 0.6], (5, 7)),     # partly outside the map: zeros there
    ([-0.45, 0.1, 0.25, 0.9], (2, 2)),
])
def test_chosen_theta_matches_handwritten_bilinear(glimpse: list[float],
                                                   out_hw: tuple[int, int]) -> None:
    """Chosen theta matches handwritten bilinear."""
    torch.manual_seed(1)
    feature = torch.randn(1, 2, 5, 7)
    got = crop(feature, torch.tensor([glimpse]), out_size=out_hw)[0]
    expected = _bilinear_reference(feature[0], glimpse, out_hw).float()
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


@pytest.mark.filterwarnings("ignore:Since version 1.3.0, affine_grid")
@pytest.mark.parametrize("out_size", [None, (3, 4), (1, 1), (9, 2)])
def test_pooled_glimpse_equals_crop_then_average_pool(out_size) -> None:
    """The separable pooled glimpse equals grid_sample + mean, values and gradients."""
    torch.manual_seed(4)
    feature = torch.randn(4, 16, 5, 7, dtype=torch.float64, requires_grad=True)
    glimpse = torch.cat([torch.rand(4, 2) * 2.4 - 1.2, torch.rand(4, 2)], dim=1).double()
    glimpse.requires_grad_(True)  # centres up to 1.2: partly outside the map

    def grads(pooled: torch.Tensor):
        return torch.autograd.grad((pooled ** 2).sum(), (feature, glimpse))

    fast = glimpse_features(feature, glimpse, out_size)
    slow = crop(feature, glimpse, out_size).mean(dim=(2, 3))
    torch.testing.assert_close(fast, slow, atol=1e-12, rtol=0)
    for g_fast, g_slow in zip(grads(fast), grads(slow)):
        torch.testing.assert_close(g_fast, g_slow, atol=1e-10, rtol=0)


def test_gradient_reaches_the_location_and_the_location_head() -> None:
    """Gradient reaches the location and the location head."""
    torch.manual_seed(2)
    feature = torch.randn(3, 8, 5, 5)
    weights = torch.randn(3, 8)
    loc = torch.tensor([[0.1, -0.3, 0.5, 0.6], [0.0, 0.2, 0.4, 0.3], [-0.5, 0.5, 0.7, 0.2]],
                       requires_grad=True)
    (glimpse_features(feature, loc) * weights).sum().backward()
    assert loc.grad is not None and bool((loc.grad.abs() > 1e-6).all())

    locator = GlimpseLocator(hidden_dim=6, context_dim=4)
    loc = locator(torch.randn(3, 6), torch.randn(3, 4))
    (glimpse_features(feature, loc) * weights).sum().backward()
    assert locator.linear.weight.grad is not None
    assert float(locator.linear.weight.grad.abs().sum()) > 0


def test_locator_outputs_valid_boxes() -> None:
    """Locator outputs valid boxes."""
    torch.manual_seed(3)
    locator = GlimpseLocator(hidden_dim=5, context_dim=3)
    loc = locator(100 * torch.randn(16, 5), 100 * torch.randn(16, 3))
    assert bool((loc[:, :2].abs() <= 1).all())
    assert bool(((loc[:, 2:] >= 0) & (loc[:, 2:] <= 1)).all())


def test_bad_shapes_raise() -> None:
    """Bad shapes raise."""
    with pytest.raises(ValueError, match="glimpse must be"):
        crop(torch.zeros(1, 2, 3, 3), torch.zeros(1, 3))
    with pytest.raises(ValueError, match="feature must be"):
        crop(torch.zeros(2, 3, 3), torch.zeros(1, 4))
    with pytest.raises(ValueError, match="batch mismatch"):
        crop(torch.zeros(2, 2, 3, 3), torch.zeros(1, 4))
    with pytest.raises(ValueError, match="glimpse must be"):
        glimpse_features(torch.zeros(2, 2, 3, 3), torch.zeros(1, 4))
