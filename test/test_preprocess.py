"""Frame preprocessing and the glimpse-to-pixel mapping."""

import numpy as np
import pytest

from glimpse_ros.preprocess import (IMAGENET_MEAN, IMAGENET_STD, glimpse_box_pixels,
                                    preprocess_frame)


def test_preprocess_shape_and_normalisation() -> None:
    frame = np.full((48, 80, 3), (255, 0, 128), dtype=np.uint8)
    x = preprocess_frame(frame, resize=32, crop=28)
    assert x.shape == (3, 28, 28) and x.dtype == np.float32
    expected = (np.array([1.0, 0.0, 128 / 255]) - IMAGENET_MEAN) / IMAGENET_STD
    np.testing.assert_allclose(x[:, 5, 5], expected, atol=1e-5)


def test_centre_crop_takes_the_middle() -> None:
    frame = np.zeros((32, 32, 3), dtype=np.uint8)
    frame[2:30, 2:30] = 255  # a bright square exactly where the 28-crop falls
    x = preprocess_frame(frame, resize=32, crop=28)
    assert np.allclose(x[0], (1.0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0], atol=1e-5)


@pytest.mark.parametrize("bad, needle", [
    (np.zeros((4, 4), np.uint8), "rank"),
    (np.zeros((4, 4, 4), np.uint8), "3 channels"),
    (np.zeros((0, 4, 3), np.uint8), "zero size"),
    (np.zeros((4, 4, 3), np.float32), "uint8"),
])
def test_bad_frames_raise(bad: np.ndarray, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        preprocess_frame(bad, resize=32, crop=28)


def test_glimpse_box_pixels_maps_crop_corners_to_source() -> None:
    # Source 640x480 resized to 256x256 and centre-cropped to 224: the full-crop glimpse covers the
    # central 224/256 of the image in both axes.
    box = glimpse_box_pixels(np.array([0.0, 0.0, 1.0, 1.0]), (480, 640), resize=256, crop=224)
    x0, y0, x1, y1 = box
    assert x0 == pytest.approx(16 * 2.5 + 0.75, abs=1e-6)  # pixel-centre convention
    assert x1 == pytest.approx(239 * 2.5 + 0.75, abs=1e-6)
    assert y0 == pytest.approx(16 * 480 / 256 + 0.5 * 480 / 256 - 0.5, abs=1e-6)
    assert (x0 + x1) / 2 == pytest.approx(319.5) and (y0 + y1) / 2 == pytest.approx(239.5)


def test_glimpse_boxes_are_clipped_to_the_image() -> None:
    box = glimpse_box_pixels(np.array([[0.99, -0.99, 0.9, 0.9]]), (100, 200), resize=64, crop=56)
    assert box.shape == (1, 4)
    assert 0 <= box[0, 0] <= box[0, 2] <= 199 and 0 <= box[0, 1] <= box[0, 3] <= 99
