"""The two-pass preprocess_frame equals the training computation (resize, crop, normalise)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from glimpse_ros.preprocess import IMAGENET_MEAN, IMAGENET_STD, preprocess_frame


def reference_preprocess(rgb: np.ndarray, resize: int, crop: int) -> np.ndarray:
    """The earlier implementation, written out: full resize, centre crop, float normalise."""
    h, w = rgb.shape[:2]
    interp = cv2.INTER_AREA if resize < max(h, w) else cv2.INTER_LINEAR
    square = cv2.resize(rgb, (resize, resize), interpolation=interp)
    o = (resize - crop) // 2
    x = square[o:o + crop, o:o + crop].astype(np.float32) * (1.0 / 255.0)
    x = (x - IMAGENET_MEAN) / IMAGENET_STD  # (crop, crop, 3)
    return np.ascontiguousarray(np.moveaxis(x, -1, -3))  # (3, crop, crop)


def textured(h: int, w: int, seed: int) -> np.ndarray:
    """Noise plus sharp edges, so that any shift or weight change of the resize shows."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    img[::7] = 255
    img[:, ::5, 1] = 0
    return img


# (H, W), resize, crop: exact spans on both axes (640x480, 1280x720, integer scales), on one
# axis only (1920x1080: rows 67.5), on none (odd sizes), enlarging on one or both axes (the
# full resize is used), and crop == resize.
CASES = [((480, 640), 256, 224), ((720, 1280), 256, 224), ((1080, 1920), 256, 224),
         ((512, 512), 256, 224), ((256, 256), 256, 224), ((240, 320), 256, 224),
         ((257, 300), 256, 224), ((1001, 257), 256, 224), ((333, 777), 256, 224),
         ((200, 1000), 256, 224), ((80, 100), 256, 224), ((480, 640), 128, 112),
         ((97, 131), 32, 28), ((480, 640), 256, 256), ((600, 800), 300, 224),
         ((280, 280), 240, 216)]  # scale 7/6: exact ends, not a binary fraction: full resize


@pytest.mark.parametrize("hw, resize, crop", CASES)
def test_equals_the_reference_implementation(hw: tuple[int, int], resize: int,
                                             crop: int) -> None:
    for seed in range(2):
        frame = textured(*hw, seed)
        got = preprocess_frame(frame, resize, crop)
        want = reference_preprocess(frame, resize, crop)
        assert got.shape == want.shape == (3, crop, crop) and got.dtype == np.float32
        assert got.flags.c_contiguous
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_non_contiguous_input_view() -> None:
    """A strided view (e.g. a cropped camera frame) gives the result of its copy."""
    big = textured(600, 900, 3)
    view = big[50:530, 100:740]  # (480, 640, 3), not contiguous
    np.testing.assert_allclose(preprocess_frame(view), reference_preprocess(
        np.ascontiguousarray(view), 256, 224), rtol=0, atol=1e-6)


def test_normalisation_in_closed_form() -> None:
    """Every uint8 value of every channel maps to (v / 255 - mean) / std (float64)."""
    frame = np.zeros((16, 16, 3), dtype=np.uint8)
    values = np.arange(256, dtype=np.uint8).reshape(16, 16)
    frame[..., 0], frame[..., 1], frame[..., 2] = values, values.T, 255 - values
    x = preprocess_frame(frame, resize=16, crop=16)  # same size: pixels pass unchanged
    for c in range(3):
        v = frame[..., c].astype(np.float64)
        expected = (v / 255.0 - float(IMAGENET_MEAN[c])) / float(IMAGENET_STD[c])
        np.testing.assert_allclose(x[c], expected, rtol=0, atol=1e-6)


def test_writes_into_a_given_buffer_and_checks_it() -> None:
    frame = textured(480, 640, 4)
    out = np.full((3, 224, 224), np.nan, dtype=np.float32)
    assert preprocess_frame(frame, out=out) is out
    np.testing.assert_allclose(out, reference_preprocess(frame, 256, 224), rtol=0, atol=1e-6)
    for bad in (np.empty((3, 224, 225), np.float32), np.empty((3, 224, 224), np.float64),
                np.empty((224, 224, 3), np.float32).transpose(2, 0, 1)):
        with pytest.raises(ValueError, match="out must be"):
            preprocess_frame(frame, out=bad)


def test_crop_larger_than_resize_raises() -> None:
    with pytest.raises(ValueError, match="crop"):
        preprocess_frame(textured(64, 64, 0), resize=32, crop=40)
