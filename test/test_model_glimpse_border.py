"""Glimpses at the borders of the layer4 map: clamp to the edge cell, never blend with zeros.

The reference is written out independently of ``glimpse.py``: on a ramp map whose value is the
column (or row) index, bilinear sampling returns the sample's cell coordinate itself, so a pooled
glimpse is the mean over its sampling points of that coordinate, clamped to ``[0, w - 1]`` with
``border="clamp"``. Mirrored ramps (``w - 1 - index``) put the large value on the first cell, so
the left / top border is tested too (a plain index ramp is 0 there under either rule).
"""

from __future__ import annotations

import pytest
import torch

from glimpse_ros.model.glimpse import crop, glimpse_features

INPUT = (160, 224)  # (H, W) pixels: a 5 x 7 layer4 map, cell n at input pixel 32 n


def _ramps(height: int, width: int) -> torch.Tensor:
    """``(1, 4, h, w)``: column, mirrored column, row, mirrored row index."""
    col = torch.arange(width, dtype=torch.float64).expand(height, width)
    row = torch.arange(height, dtype=torch.float64).unsqueeze(1).expand(height, width)
    return torch.stack([col, width - 1 - col, row, height - 1 - row]).unsqueeze(0)


def _ramp_value(p: float, cells: int, border: str) -> float:
    """The index ramp bilinearly sampled at cell coordinate ``p`` (zeros: padding beyond)."""
    if border == "clamp":
        return min(max(p, 0.0), cells - 1.0)
    if p < 0.0:
        return 0.0                                  # cell 0 holds 0, the padding 0
    if p <= cells - 1:
        return p
    return (cells - 1) * max(0.0, 1.0 - (p - (cells - 1)))


def _expected(centre: float, scale: float, steps: int, pixels: int, cells: int,
              border: str) -> tuple[float, float]:
    """Pooled (index ramp, mirrored ramp) of a glimpse along one axis, by hand."""
    plain, mirrored = 0.0, 0.0
    for j in range(steps):
        t = -1.0 + 2.0 * j / (steps - 1) if steps > 1 else 0.0
        p = (centre + scale * t + 1.0) * (pixels - 1) / 2.0 / 32.0   # input pixel / 32
        plain += _ramp_value(p, cells, border)
        # the mirrored ramp w-1-n sampled at p equals the index ramp sampled at w-1-p
        mirrored += _ramp_value(cells - 1 - p, cells, border)
    return plain / steps, mirrored / steps


@pytest.mark.parametrize("border", ["clamp", "zeros"])
@pytest.mark.parametrize("scale", [0.05, 0.2, 0.5, 0.9])
@pytest.mark.parametrize("centre", [0.9, -0.9])
@pytest.mark.parametrize("axis", ["x", "y"])
def test_ramp_at_both_borders_matches_the_hand_computed_sample(axis: str, centre: float,
                                                               scale: float,
                                                               border: str) -> None:
    """A glimpse at +-0.9 on either axis pools the hand-computed value of each ramp."""
    height, width = 5, 7
    feature = _ramps(height, width)
    # The other axis stays inside the cell centres (under "zeros" it would attenuate too).
    box = [centre, 0.0, scale, 0.2] if axis == "x" else [0.0, centre, 0.2, scale]
    glimpse = torch.tensor([box], dtype=torch.float64)
    pooled = glimpse_features(feature, glimpse, INPUT, border=border)[0]     # (4,)
    via_crop = crop(feature, glimpse, INPUT, border=border).mean(dim=(2, 3))[0]
    if axis == "x":
        want = _expected(centre, scale, width, INPUT[1], width, border)
        got = pooled[:2]
    else:
        want = _expected(centre, scale, height, INPUT[0], height, border)
        got = pooled[2:]
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64), atol=1e-9, rtol=0)
    torch.testing.assert_close(via_crop, pooled, atol=1e-9, rtol=0)


def test_the_issue_example_column_6_not_2_3() -> None:
    """At x = +0.9 of a 224 crop (cell 6.62, past the last centre) clamp reads 6, zeros 2.28."""
    feature = _ramps(7, 7)
    glimpse = torch.tensor([[0.9, 0.0, 0.05, 0.05]], dtype=torch.float64)
    clamp = glimpse_features(feature, glimpse, (224, 224), border="clamp")[0, 0]
    zeros = glimpse_features(feature, glimpse, (224, 224), border="zeros")[0, 0]
    cell = 1.9 * 223 / 2 / 32                       # 6.62
    assert float(clamp) == pytest.approx(6.0)
    assert float(zeros) == pytest.approx(6.0 * (7.0 - cell))
    assert float(zeros) == pytest.approx(2.28, abs=0.01)


def test_clamp_is_the_default_and_interior_glimpses_are_unchanged() -> None:
    """Inside the cell centres both rules agree; the default is clamp."""
    torch.manual_seed(3)
    feature = torch.randn(2, 6, 5, 7, dtype=torch.float64)
    inner = torch.tensor([[0.1, -0.2, 0.3, 0.2], [-0.4, 0.3, 0.2, 0.3]], dtype=torch.float64)
    torch.testing.assert_close(glimpse_features(feature, inner, INPUT, border="clamp"),
                               glimpse_features(feature, inner, INPUT, border="zeros"))
    edge = torch.tensor([[0.95, 0.9, 0.3, 0.3]] * 2, dtype=torch.float64)
    torch.testing.assert_close(glimpse_features(feature, edge, INPUT),
                               glimpse_features(feature, edge, INPUT, border="clamp"))
    assert not torch.allclose(glimpse_features(feature, edge, INPUT, border="zeros"),
                              glimpse_features(feature, edge, INPUT, border="clamp"))
