"""Image / CompressedImage -> RGB conversion: every encoding, row padding, bad messages."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

pytest.importorskip("sensor_msgs.msg")
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

from glimpse_ros.ros.image_conversion import (  # noqa: E402
    ImageConversionError, compressed_to_rgb, image_to_rgb, rgb_to_image)

H, W = 6, 10
RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, size=(H, W, 3), dtype=np.uint8)


def make_image(pixels: np.ndarray, encoding: str, pad: int = 0) -> Image:
    """Pack (H, W, ch) pixels into an Image with ``pad`` junk bytes at the end of every row."""
    h, w = pixels.shape[:2]
    rows = pixels.reshape(h, -1)
    junk = np.full((h, pad), 77, dtype=np.uint8)
    data = np.concatenate([rows, junk], axis=1)  # (H, step)
    msg = Image(height=h, width=w, encoding=encoding, step=data.shape[1])
    msg.data = data.tobytes()
    return msg


def encoded(encoding: str) -> tuple[np.ndarray, np.ndarray]:
    """(pixels in ``encoding``, expected RGB) computed the way cv_bridge does."""
    if encoding == "rgb8":
        return RGB, RGB
    if encoding in ("bgr8", "8UC3"):
        return RGB[..., ::-1].copy(), RGB
    if encoding == "rgba8":
        return np.dstack([RGB, np.full((H, W), 9, np.uint8)]), RGB
    if encoding == "bgra8":
        return np.dstack([RGB[..., ::-1], np.full((H, W), 9, np.uint8)]), RGB
    if encoding in ("mono8", "8UC1"):
        gray = RGB[..., 0]
        return gray[..., None], np.repeat(gray[..., None], 3, axis=2)
    yuv = RNG.integers(0, 256, size=(H, W, 2), dtype=np.uint8)
    code = (cv2.COLOR_YUV2RGB_UYVY if encoding in ("yuv422", "uyvy")
            else cv2.COLOR_YUV2RGB_YUY2)
    return yuv, cv2.cvtColor(yuv, code)


ENCODINGS = ["rgb8", "bgr8", "rgba8", "bgra8", "mono8", "8UC1", "8UC3", "yuv422", "uyvy",
             "yuv422_yuy2", "yuyv"]


@pytest.mark.parametrize("pad", [0, 3, 64])
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_every_encoding_with_padding(encoding: str, pad: int) -> None:
    """Every encoding with padding."""
    pixels, expected = encoded(encoding)
    out = image_to_rgb(make_image(pixels, encoding, pad))
    assert out.shape == (H, W, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("encoding,order", [("yuv422", "uyvy"), ("uyvy", "uyvy"),
                                            ("yuv422_yuy2", "yuyv"), ("yuyv", "yuyv")])
def test_yuv_byte_order(encoding: str, order: str) -> None:
    """Yuv byte order."""
    # Neutral chroma (U = V = 128): the output is grey with the luma value, whatever the order.
    luma = np.tile(np.linspace(16, 235, W).astype(np.uint8), (H, 1))  # (H, W)
    chroma = np.full((H, W), 128, np.uint8)
    pixels = np.dstack([chroma, luma] if order == "uyvy" else [luma, chroma])  # (H, W, 2)
    out = image_to_rgb(make_image(pixels, encoding, pad=2)).astype(int)
    for c in range(3):
        assert np.abs(out[..., c] - (luma.astype(int) - 16) * 255 / 219).max() <= 2


def test_round_trip_rgb_to_image() -> None:
    """Round trip rgb to image."""
    for enc in ("rgb8", "bgr8"):
        msg = rgb_to_image(RGB, encoding=enc)
        np.testing.assert_array_equal(image_to_rgb(msg), RGB)


@pytest.mark.parametrize("ext,fmt", [(".png", "png"), (".png", "bgr8; png compressed bgr8"),
                                     (".jpg", "jpeg"), (".jpg", "rgb8; jpeg compressed bgr8")])
def test_compressed(ext: str, fmt: str) -> None:
    """Compressed."""
    ok, buf = cv2.imencode(ext, RGB[..., ::-1])
    assert ok
    msg = CompressedImage(format=fmt)
    msg.data = buf.tobytes()
    out = compressed_to_rgb(msg)
    reference = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(out, reference)
    if ext == ".png":
        np.testing.assert_array_equal(out, RGB)


def bad_images() -> list[tuple[str, Image, int]]:
    """(expected reason, malformed message, pixel limit) cases."""
    good = make_image(RGB, "rgb8", pad=2)
    cases = []
    m = make_image(RGB, "rgb8")
    m.encoding = "bayer_rggb8"
    cases.append(("encoding", m, 10**8))
    m = make_image(RGB, "rgb8")
    m.encoding = "32FC1"
    cases.append(("encoding", m, 10**8))
    m = Image(height=0, width=0, encoding="rgb8", step=0)
    cases.append(("zero_size", m, 10**8))
    m = Image(height=H, width=0, encoding="rgb8", step=0)
    cases.append(("zero_size", m, 10**8))
    cases.append(("too_large", good, H * W - 1))
    m = make_image(RGB, "rgb8")
    m.step = W * 3 - 1
    cases.append(("step", m, 10**8))
    m = make_image(RGB, "rgb8", pad=2)
    m.data = bytes(m.data)[:-5]
    cases.append(("truncated", m, 10**8))
    m = make_image(RGB, "rgb8")
    m.data = bytes(m.data) + b"\0" * 7
    cases.append(("size_mismatch", m, 10**8))
    m = make_image(np.zeros((H, W - 1, 2), np.uint8), "yuyv")
    cases.append(("size_mismatch", m, 10**8))
    # A header announcing a huge frame with almost no data must not allocate anything.
    m = Image(height=100000, width=100000, encoding="rgb8", step=300000)
    cases.append(("too_large", m, 10**8))
    return cases


@pytest.mark.parametrize("reason,msg,limit", bad_images())
def test_bad_images_raise_with_reason(reason: str, msg: Image, limit: int) -> None:
    """Bad images raise with reason."""
    with pytest.raises(ImageConversionError) as info:
        image_to_rgb(msg, max_pixels=limit)
    assert info.value.reason == reason
    assert isinstance(info.value, ValueError) and str(info.value)


def _jpeg() -> bytes:
    return cv2.imencode(".jpg", RGB)[1].tobytes()


def _huge_png_header() -> bytes:
    ok, buf = cv2.imencode(".png", RGB)
    data = bytearray(buf.tobytes())
    data[16:24] = (60000).to_bytes(4, "big") + (60000).to_bytes(4, "big")
    return bytes(data)


@pytest.mark.parametrize("reason,fmt,data", [
    ("format", "tiff", _jpeg()),
    ("zero_size", "jpeg", b""),
    ("corrupt", "jpeg", b"this is not an image at all"),
    ("truncated", "jpeg", _jpeg()[: len(_jpeg()) // 2]),
    ("corrupt", "jpeg", _jpeg()[:2] + bytes(200)),
    ("corrupt", "png", cv2.imencode(".png", RGB)[1].tobytes()[:60]),
    ("too_large", "png", _huge_png_header()),
])
def test_bad_compressed_raise_with_reason(reason: str, fmt: str, data: bytes) -> None:
    """Bad compressed raise with reason."""
    msg = CompressedImage(format=fmt)
    msg.data = data
    with pytest.raises(ImageConversionError) as info:
        compressed_to_rgb(msg, max_pixels=10**7)
    assert info.value.reason == reason


def test_compressed_size_limit_before_decoding() -> None:
    """Compressed size limit before decoding."""
    msg = CompressedImage(format="jpeg")
    msg.data = _jpeg()
    with pytest.raises(ImageConversionError) as info:
        compressed_to_rgb(msg, max_pixels=H * W - 1)
    assert info.value.reason == "too_large"
    assert compressed_to_rgb(msg, max_pixels=H * W).shape == (H, W, 3)
