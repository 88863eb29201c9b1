"""One coordinate frame: glimpses in input-crop coordinates land where the backbone looks."""

import numpy as np
import pytest
import torch

from glimpse_ros.config import ModelConfig
from glimpse_ros.model.backbone import InflatedResNet
from glimpse_ros.model.glimpse import crop, glimpse_features
from glimpse_ros.model.receptive_field import layer4_map, layer4_size
from glimpse_ros.preprocess import glimpse_box_pixels

SIZE = 160  # input pixels: a 5x5 layer4 map, cells centred at 0, 32, ..., 128


def _to_unit(pixel: float, size: int) -> float:
    """Input pixel -> input-crop normalised coordinate (-1, +1 at the border pixel centres)."""
    return 2.0 * pixel / (size - 1) - 1.0


@pytest.fixture(scope="module")
def input_gradients() -> dict[tuple[int, int], np.ndarray]:
    """|d sum(Z[cell]) / d x| summed over batch, channels and time, per layer4 cell (eval net)."""
    torch.manual_seed(0)
    net = InflatedResNet(ModelConfig.small()).eval()
    x = torch.randn(4, 3, 1, SIZE, SIZE, requires_grad=True)
    z, _ = net(x)  # (4, D, 1, 5, 5)
    assert z.shape[-2:] == (5, 5)
    maps = {}
    for cell in [(0, 0), (4, 4), (0, 4), (4, 0), (2, 2), (1, 3)]:
        grad, = torch.autograd.grad(z[..., cell[0], cell[1]].sum(), x, retain_graph=True)
        maps[cell] = grad.abs().sum(dim=(0, 1, 2)).double().numpy()  # (SIZE, SIZE)
    return maps


def _support(profile: np.ndarray) -> tuple[int, int]:
    nonzero = np.flatnonzero(profile > 1e-12 * profile.max())
    return int(nonzero[0]), int(nonzero[-1])


def test_layer4_cells_are_centred_where_the_map_says(input_gradients) -> None:
    """The input-gradient of a cell is centred on the pixel the receptive-field map gives.

    Interior cells: centre of mass and the middle of the gradient's support. Border cells see
    only part of their receptive field (the rest is padding), so their centre is read off the
    untruncated side of the support, at the half-width measured on an interior cell.
    """
    rf = layer4_map()
    pixels = np.arange(SIZE, dtype=np.float64)
    centre_lo, centre_hi = _support(input_gradients[(2, 2)].sum(axis=0))
    half_width = (centre_hi - centre_lo) / 2.0
    for (row, col), grad in input_gradients.items():
        for axis, index in ((1, col), (0, row)):  # x profile sums rows (axis 0), y sums columns
            expected = rf.offset + rf.stride * index
            profile = grad.sum(axis=1 - axis)  # (SIZE,)
            lo, hi = _support(profile)
            if lo > 0 and hi < SIZE - 1:  # whole receptive field inside the input
                assert (lo + hi) / 2.0 == pytest.approx(expected, abs=1.0)
                com = float((profile * pixels).sum() / profile.sum())
                assert com == pytest.approx(expected, abs=1.5), (row, col, axis)
            elif lo == 0:  # cut at the left/top border
                assert hi - half_width == pytest.approx(expected, abs=1.0), (row, col, axis)
            else:  # cut at the right/bottom border
                assert lo + half_width == pytest.approx(expected, abs=1.0), (row, col, axis)


def test_layer4_map_and_size_match_the_built_backbone() -> None:
    """ResNet: cell i at input pixel 32 i; the size formula matches the real output size."""
    rf = layer4_map()
    assert (rf.offset, rf.stride) == (0.0, 32.0)
    net = InflatedResNet(ModelConfig.small()).eval()
    with torch.no_grad():
        for size in (32, 64, 96, 112, 130):
            z, _ = net(torch.zeros(1, 3, 1, size, size))
            assert z.shape[-1] == layer4_size(size)


@pytest.mark.filterwarnings("ignore:Since version 1.3.0, affine_grid")
def test_crop_samples_the_cell_under_the_input_pixel() -> None:
    """A glimpse centred on input pixel p reads Z at cell p / 32 (by hand, on linear ramps)."""
    size, cells = 224, 7
    ramp = torch.arange(cells, dtype=torch.float64) + 1.0  # cell n holds n + 1
    feature = torch.stack([ramp.expand(cells, cells), ramp.unsqueeze(1).expand(cells, cells)])
    feature = feature.unsqueeze(0)  # (1, 2, 7, 7): channel 0 = column + 1, channel 1 = row + 1
    # Centre at pixel (80, 144): cells (2.5, 4.5), values (3.5, 5.5). Half-extent 32 px = 1 cell.
    x, y = _to_unit(80.0, size), _to_unit(144.0, size)
    half = 32.0 * 2.0 / (size - 1)
    glimpse = torch.tensor([[x, y, half, half]], dtype=torch.float64)
    samples = crop(feature, glimpse, (size, size), out_size=(3, 3))[0]  # (2, 3, 3)
    torch.testing.assert_close(samples[0, 1], torch.tensor([2.5, 3.5, 4.5], dtype=torch.float64))
    torch.testing.assert_close(samples[1, :, 1], torch.tensor([4.5, 5.5, 6.5],
                                                              dtype=torch.float64))
    pooled = glimpse_features(feature, glimpse, (size, size), out_size=(3, 3))[0]
    torch.testing.assert_close(pooled, torch.tensor([3.5, 5.5], dtype=torch.float64))
    # The crop's right border, pixel 223 = cell 6.97: beyond the last cell centre (pixel 192).
    # "zeros" blends 3% of cell 6 (value 7) with padding; "clamp" reads cell 6.
    edge = torch.tensor([[1.0, _to_unit(96.0, size), 0.0, 0.0]], dtype=torch.float64)
    value = crop(feature, edge, (size, size), out_size=(1, 1), border="zeros")[0, 0, 0, 0]
    assert float(value) == pytest.approx(7.0 * (1.0 - 223.0 / 32.0 + 6.0))
    value = crop(feature, edge, (size, size), out_size=(1, 1), border="clamp")[0, 0, 0, 0]
    assert float(value) == pytest.approx(7.0)


def test_overlay_box_of_a_glimpse_by_hand() -> None:
    """The ROS boxes use the same frame: a glimpse on cell 3 is drawn around source pixel 112."""
    size = 224
    # Centre on crop pixel 96 (layer4 cell 3), half-extent 32 crop pixels, on a 256x256 source
    # (resize 256: scale 1, centre-crop offset 16).
    half = 32.0 * 2.0 / (size - 1)
    glimpse = np.array([_to_unit(96.0, size), _to_unit(96.0, size), half, half])
    box = glimpse_box_pixels(glimpse, (256, 256), resize=256, crop=size)
    np.testing.assert_allclose(box, [16 + 64, 16 + 64, 16 + 128, 16 + 128], atol=1e-9)
    # On a 512x256 (W x H) source the x axis scales by 2 about pixel centres: 2 (p + 0.5) - 0.5.
    box = glimpse_box_pixels(glimpse, (256, 512), resize=256, crop=size)
    np.testing.assert_allclose(box[0::2], [2 * 80.5 - 0.5, 2 * 144.5 - 0.5], atol=1e-9)
