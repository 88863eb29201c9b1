"""Differentiable glimpse crop and location head (glimpses in input-crop coordinates)."""

import math

import pytest
import torch

from glimpse_ros.model.glimpse import GlimpseLocator, crop, glimpse_features, glimpse_theta

INPUT = (160, 224)  # (H, W) input pixels of a 5 x 7 layer4 map


def _bilinear_reference(feature: torch.Tensor, glimpse: list[float],
                        out_hw: tuple[int, int], border: str = "clamp") -> torch.Tensor:
    """Paper §3.3 sampler written out: sum_mn Z(m, n) max(0, 1-|xs-n|) max(0, 1-|ys-m|).

    Source points are input pixels (``-1``/``+1`` = first/last pixel centre of the ``INPUT``
    crop) divided by 32: layer4 cell ``n`` of a ResNet is centred at input pixel ``32 n``.
    ``border="clamp"`` moves a point beyond the first / last cell centre onto it.
    """
    x, y, sx, sy = glimpse
    channels, height, width = feature.shape
    out_h, out_w = out_hw
    out = torch.zeros(channels, out_h, out_w, dtype=torch.float64)
    for i in range(out_h):
        for j in range(out_w):
            xt = -1.0 + 2.0 * j / (out_w - 1)
            yt = -1.0 + 2.0 * i / (out_h - 1)
            px = (sx * xt + x + 1.0) / 2.0 * (INPUT[1] - 1) / 32.0
            py = (sy * yt + y + 1.0) / 2.0 * (INPUT[0] - 1) / 32.0
            if border == "clamp":
                px, py = min(max(px, 0.0), width - 1.0), min(max(py, 0.0), height - 1.0)
            for m in range(height):
                for n in range(width):
                    w = max(0.0, 1.0 - abs(px - n)) * max(0.0, 1.0 - abs(py - m))
                    out[:, i, j] += w * feature[:, m, n].double()
    return out


def test_theta_layout() -> None:
    """Theta layout."""
    theta = glimpse_theta(torch.tensor([[0.1, -0.2, 0.3, 0.4]]))
    assert torch.equal(theta, torch.tensor([[[0.3, 0.0, 0.1], [0.0, 0.4, -0.2]]]))


def test_glimpse_spanning_the_cell_centres_returns_the_feature_map() -> None:
    """A box from the first to the last cell centre (pixels 0..192 of 224) samples every cell."""
    torch.manual_seed(0)
    feature = torch.randn(2, 5, 4, 7)  # input (128, 224): cells at pixels 0..96 x 0..192
    x, sx = 96.0 * 2 / 223 - 1, 96.0 * 2 / 223
    y, sy = 48.0 * 2 / 127 - 1, 48.0 * 2 / 127
    box = torch.tensor([[x, y, sx, sy]] * 2)
    torch.testing.assert_close(crop(feature, box, (128, 224)), feature, atol=1e-5, rtol=0)
    torch.testing.assert_close(glimpse_features(feature, box, (128, 224)),
                               feature.mean(dim=(2, 3)), atol=1e-5, rtol=0)


@pytest.mark.parametrize("border", ["clamp", "zeros"])
@pytest.mark.parametrize("glimpse,out_hw", [
    ([0.3, -0.2, 0.5, 0.4], (3, 4)),
    ([0.8, 0.5, 0.5, 0.6], (5, 7)),     # partly beyond the last cell centres
    ([-0.45, 0.1, 0.25, 0.9], (2, 2)),
    ([-0.9, -0.95, 0.6, 0.3], (4, 3)),  # beyond the first cell centres and the crop
])
def test_chosen_theta_matches_handwritten_bilinear(glimpse: list[float],
                                                   out_hw: tuple[int, int], border: str) -> None:
    """Chosen theta matches handwritten bilinear, with either border rule."""
    torch.manual_seed(1)
    feature = torch.randn(1, 2, 5, 7)
    got = crop(feature, torch.tensor([glimpse]), INPUT, out_size=out_hw, border=border)[0]
    expected = _bilinear_reference(feature[0], glimpse, out_hw, border).float()
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


@pytest.mark.filterwarnings("ignore:Since version 1.3.0, affine_grid")
@pytest.mark.parametrize("border", ["clamp", "zeros"])
@pytest.mark.parametrize("out_size", [None, (3, 4), (1, 1), (9, 2)])
def test_pooled_glimpse_equals_crop_then_average_pool(out_size, border: str) -> None:
    """The separable pooled glimpse equals grid_sample + mean, values and gradients."""
    torch.manual_seed(4)
    feature = torch.randn(4, 16, 5, 7, dtype=torch.float64, requires_grad=True)
    glimpse = torch.cat([torch.rand(4, 2) * 2.4 - 1.2, torch.rand(4, 2)], dim=1).double()
    glimpse.requires_grad_(True)  # centres up to 1.2: partly outside the map

    def grads(pooled: torch.Tensor):
        return torch.autograd.grad((pooled ** 2).sum(), (feature, glimpse))

    fast = glimpse_features(feature, glimpse, INPUT, out_size, border)
    slow = crop(feature, glimpse, INPUT, out_size, border).mean(dim=(2, 3))
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
    (glimpse_features(feature, loc, (160, 160)) * weights).sum().backward()
    assert loc.grad is not None and bool((loc.grad.abs() > 1e-6).all())

    locator = GlimpseLocator(hidden_dim=6, context_dim=4)
    loc = locator(torch.randn(3, 6), torch.randn(3, 4))
    (glimpse_features(feature, loc, (160, 160)) * weights).sum().backward()
    assert locator.linear.weight.grad is not None
    assert float(locator.linear.weight.grad.abs().sum()) > 0


def test_locator_is_eq3_squashed_by_hand() -> None:
    """Eq. 3 by hand: centre = tanh of outputs 0-1, scales = sigmoid of outputs 2-3."""
    locator = GlimpseLocator(hidden_dim=2, context_dim=1)
    with torch.no_grad():
        locator.linear.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 2.0],
                                                  [0.0, -1.0, 0.0], [0.5, 0.5, 0.5]]))
        locator.linear.bias.copy_(torch.tensor([0.0, 0.1, 0.0, -1.0]))
    h, c = torch.tensor([[0.3, -0.4]]), torch.tensor([[0.2]])
    expected = [math.tanh(0.3), math.tanh(0.4 + 0.1), 1 / (1 + math.exp(-0.4)),
                1 / (1 + math.exp(-(0.05 - 1.0)))]
    torch.testing.assert_close(locator(h, c), torch.tensor([expected]))


def test_bad_shapes_raise() -> None:
    """Bad shapes raise."""
    with pytest.raises(ValueError, match="glimpse must be"):
        crop(torch.zeros(1, 2, 3, 3), torch.zeros(1, 3), INPUT)
    with pytest.raises(ValueError, match="feature must be"):
        crop(torch.zeros(2, 3, 3), torch.zeros(1, 4), INPUT)
    with pytest.raises(ValueError, match="batch mismatch"):
        crop(torch.zeros(2, 2, 3, 3), torch.zeros(1, 4), INPUT)
    with pytest.raises(ValueError, match="glimpse must be"):
        glimpse_features(torch.zeros(2, 2, 3, 3), torch.zeros(1, 4), INPUT)
    with pytest.raises(ValueError, match="input_size"):
        glimpse_features(torch.zeros(1, 2, 3, 3), torch.zeros(1, 4), (0, 96))
    with pytest.raises(ValueError, match="border must be one of clamp, zeros"):
        glimpse_features(torch.zeros(1, 2, 3, 3), torch.zeros(1, 4), INPUT, border="edge")
    with pytest.raises(ValueError, match="border must be one of clamp, zeros"):
        crop(torch.zeros(1, 2, 3, 3), torch.zeros(1, 4), INPUT, border="reflect")
