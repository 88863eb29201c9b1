"""Image / CompressedImage -> RGB conversion: every encoding, row padding, bad messages."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

pytest.importorskip("sensor_msgs.msg")
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

from glimpse_ros.ros.image_message import rgb_to_image  # noqa: E402
from glimpse_ros.sources.image_decoding import (ImageConversionError,  # noqa: E402
                                                compressed_to_rgb, image_to_rgb)

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
    if encoding == "bgr8":
        return RGB[..., ::-1].copy(), RGB
    if encoding == "rgba8":
        return np.dstack([RGB, np.full((H, W), 9, np.uint8)]), RGB
    if encoding == "bgra8":
        return np.dstack([RGB[..., ::-1], np.full((H, W), 9, np.uint8)]), RGB
    if encoding == "mono8":
        gray = RGB[..., 0]
        return gray[..., None], np.repeat(gray[..., None], 3, axis=2)
    yuv = RNG.integers(0, 256, size=(H, W, 2), dtype=np.uint8)
    code = (cv2.COLOR_YUV2RGB_UYVY if encoding in ("yuv422", "uyvy")
            else cv2.COLOR_YUV2RGB_YUY2)
    return yuv, cv2.cvtColor(yuv, code)


ENCODINGS = ["rgb8", "bgr8", "rgba8", "bgra8", "mono8", "yuv422", "uyvy", "yuv422_yuy2", "yuyv"]


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
    for generic in ("8UC3", "8UC1", "16UC1"):  # cv_bridge refuses these as rgb8 too
        m = make_image(RGB, "rgb8")
        m.encoding = generic
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
    m = make_image(np.zeros((1, W, 1), np.uint8), "bayer_rggb8")
    cases.append(("size_mismatch", m, 10**8))
    m = make_image(np.zeros((H, W, 2), np.uint8), "mono16")
    m.step = W * 2 - 1  # one 8-bit row is not one 16-bit row
    m.data = bytes(m.step * H)
    cases.append(("step", m, 10**8))
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


# ROS Bayer pattern name -> the OpenCV code cv_bridge uses (cv_bridge.cpp, getConversionCodes):
# OpenCV names a pattern by the 2x2 block starting at the second row and column.
BAYER_CODES = {"rggb": cv2.COLOR_BayerBG2RGB, "bggr": cv2.COLOR_BayerRG2RGB,
               "gbrg": cv2.COLOR_BayerGR2RGB, "grbg": cv2.COLOR_BayerGB2RGB}
CHANNEL = {"r": 0, "g": 1, "b": 2}


def mosaic(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """Sample (H, W, 3) through a Bayer filter whose top-left 2x2 block is ``pattern``."""
    out = np.empty(rgb.shape[:2], rgb.dtype)
    for k, colour in enumerate(pattern):  # k: 0 (0,0), 1 (0,1), 2 (1,0), 3 (1,1)
        dy, dx = divmod(k, 2)
        out[dy::2, dx::2] = rgb[dy::2, dx::2, CHANNEL[colour]]
    return out


def to8(v: np.ndarray) -> np.ndarray:
    """cv_bridge's 16 -> 8 bit scaling in closed form: round(v * 255 / 65535) = round(v / 257)."""
    return np.floor(v.astype(np.float64) / 257.0 + 0.5).astype(np.uint8)


def make_image16(pixels: np.ndarray, encoding: str, big_endian: bool, pad: int = 0) -> Image:
    """Pack (H, W, ch) uint16 pixels with the given byte order and ``pad`` bytes per row."""
    h = pixels.shape[0]
    raw = pixels.astype(">u2" if big_endian else "<u2").reshape(h, -1).view(np.uint8)
    msg = make_image(raw.reshape(h, pixels.shape[1], -1), encoding, pad)
    msg.is_bigendian = int(big_endian)
    return msg


@pytest.mark.parametrize("pattern", list(BAYER_CODES))
@pytest.mark.parametrize("bits", [8, 16])
def test_bayer_like_cv_bridge(pattern: str, bits: int) -> None:
    """bayer_* frames: cv_bridge's demosaicing code, and a flat colour comes back unchanged."""
    dtype = np.uint8 if bits == 8 else np.uint16
    rgb = RGB.astype(dtype) * (257 if bits == 16 else 1)
    raw = mosaic(rgb, pattern)  # (H, W)
    encoding = f"bayer_{pattern}{bits}"
    msg = (make_image(raw[..., None], encoding, pad=4) if bits == 8
           else make_image16(raw[..., None], encoding, big_endian=False, pad=4))
    expected = cv2.cvtColor(raw, BAYER_CODES[pattern])
    np.testing.assert_array_equal(image_to_rgb(msg), expected if bits == 8 else to8(expected))
    # Independent of OpenCV's naming: a uniform colour seen through the filter demosaics back to
    # itself away from the border (a wrong pattern would swap red and blue).
    flat = np.zeros((8, 12, 3), dtype)
    flat[...] = np.array([200, 90, 20], dtype) * (257 if bits == 16 else 1)
    raw = mosaic(flat, pattern)
    msg = (make_image(raw[..., None], encoding) if bits == 8
           else make_image16(raw[..., None], encoding, big_endian=True))
    out = image_to_rgb(msg)
    np.testing.assert_array_equal(out[2:-2, 2:-2], np.broadcast_to([200, 90, 20], (4, 8, 3)))


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("encoding", ["mono16", "rgb16", "bgr16", "rgba16", "bgra16"])
def test_sixteen_bit_scaled_like_cv_bridge(encoding: str, big_endian: bool) -> None:
    """16-bit encodings: channel order as for 8 bits, values scaled by 255/65535 and rounded."""
    rgb16 = RNG.integers(0, 65536, size=(H, W, 3)).astype(np.uint16)
    rgb16[0, :4, 0] = [0, 128, 129, 65535]  # 128/257 rounds down, 129/257 up
    alpha = np.full((H, W, 1), 4321, np.uint16)
    pixels = {"mono16": rgb16[..., :1], "rgb16": rgb16, "bgr16": rgb16[..., ::-1],
              "rgba16": np.dstack([rgb16, alpha]),
              "bgra16": np.dstack([rgb16[..., ::-1], alpha])}[encoding]
    expected = to8(np.repeat(rgb16[..., :1], 3, axis=2) if encoding == "mono16" else rgb16)
    out = image_to_rgb(make_image16(np.ascontiguousarray(pixels), encoding, big_endian, pad=6))
    assert out.dtype == np.uint8 and out.shape == (H, W, 3)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(out[0, :4, 0], [0, 0, 1, 255])


# encoding -> bytes per pixel (what cv_bridge reads), for random test frames
CV_BRIDGE_ENCODINGS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1, "yuv422": 2,
                       "yuv422_yuy2": 2, "mono16": 2, "rgb16": 6, "bgr16": 6, "rgba16": 8,
                       "bgra16": 8, "bayer_rggb8": 1, "bayer_bggr8": 1, "bayer_gbrg8": 1,
                       "bayer_grbg8": 1, "bayer_rggb16": 2, "8UC1": 1, "8UC3": 3, "16UC1": 2,
                       "32FC1": 4}


@pytest.mark.parametrize("encoding", list(CV_BRIDGE_ENCODINGS))
def test_agrees_with_cv_bridge(encoding: str) -> None:
    """Where cv_bridge is installed (a ROS install): same pixels, or both refuse."""
    cv_bridge = pytest.importorskip("cv_bridge")
    bridge = cv_bridge.CvBridge()
    raw = RNG.integers(0, 256, size=(H, W, CV_BRIDGE_ENCODINGS[encoding]), dtype=np.uint8)
    msg = make_image(raw, encoding, pad=2)
    try:
        expected = bridge.imgmsg_to_cv2(msg, "rgb8")
    except cv_bridge.CvBridgeError:
        with pytest.raises(ImageConversionError):
            image_to_rgb(msg)
        return
    np.testing.assert_array_equal(image_to_rgb(msg), expected)
