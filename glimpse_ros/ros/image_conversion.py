"""sensor_msgs Image / CompressedImage -> RGB uint8 numpy arrays, with the semantics of cv_bridge.

cv_bridge is not available from PyPI, so the node converts with numpy and OpenCV, following
``cv_bridge::toCvCopy(msg, "rgb8")`` (vision_opencv, ``cv_bridge.cpp``) per encoding:

* colour, mono and Bayer encodings: the same ``cv::cvtColor`` code as cv_bridge's conversion table
  (note OpenCV's names: ROS ``bayer_rggb`` is ``COLOR_BayerBG2RGB``, ``bggr`` is ``BayerRG``,
  ``gbrg`` is ``BayerGR``, ``grbg`` is ``BayerGB``);
* 16-bit encodings (``mono16``, ``rgb16``, ``bgr16``, ``rgba16``, ``bgra16``, ``bayer_*16``):
  converted in 16 bits first, then scaled to 8 bits by 255/65535 with rounding (cv_bridge's
  ``convertTo``), honouring ``is_bigendian``;
* generic OpenCV types (``8UC1``, ``8UC3``, ``16UC1``, ``32FC1``, ...) carry no colour meaning and
  cv_bridge refuses to turn them into rgb8 ("not a color format"): so are they here.

ROS encoding names for packed 4:2:2 YUV (sensor_msgs/image_encodings.hpp): ``yuv422`` and ``uyvy``
are U0 Y0 V0 Y1 byte order, ``yuv422_yuy2`` and ``yuyv`` are Y0 U0 Y1 V0. cv_bridge converts the
first name of each pair; the aliases ``uyvy`` and ``yuyv`` are accepted here as well (an
extension).

Every rejection raises :class:`ImageConversionError` (a ``ValueError``) whose ``reason`` is one
short key (see :data:`REJECT_REASONS`) so that the node can count rejected frames per cause in its
diagnostics.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

import cv2
import numpy as np


class _Layout(NamedTuple):
    channels: int
    bytes_per_channel: int  # 1 or 2
    code: int | None  # cv2 conversion to RGB, None for a plain copy


# encoding -> layout, conversion code as in cv_bridge's getConversionCodes() for dst rgb8.
_ENCODINGS: dict[str, _Layout] = {
    "rgb8": _Layout(3, 1, None),
    "bgr8": _Layout(3, 1, cv2.COLOR_BGR2RGB),
    "rgba8": _Layout(4, 1, cv2.COLOR_RGBA2RGB),
    "bgra8": _Layout(4, 1, cv2.COLOR_BGRA2RGB),
    "mono8": _Layout(1, 1, cv2.COLOR_GRAY2RGB),
    "rgb16": _Layout(3, 2, None),
    "bgr16": _Layout(3, 2, cv2.COLOR_BGR2RGB),
    "rgba16": _Layout(4, 2, cv2.COLOR_RGBA2RGB),
    "bgra16": _Layout(4, 2, cv2.COLOR_BGRA2RGB),
    "mono16": _Layout(1, 2, cv2.COLOR_GRAY2RGB),
    "bayer_rggb8": _Layout(1, 1, cv2.COLOR_BayerBG2RGB),
    "bayer_bggr8": _Layout(1, 1, cv2.COLOR_BayerRG2RGB),
    "bayer_gbrg8": _Layout(1, 1, cv2.COLOR_BayerGR2RGB),
    "bayer_grbg8": _Layout(1, 1, cv2.COLOR_BayerGB2RGB),
    "bayer_rggb16": _Layout(1, 2, cv2.COLOR_BayerBG2RGB),
    "bayer_bggr16": _Layout(1, 2, cv2.COLOR_BayerRG2RGB),
    "bayer_gbrg16": _Layout(1, 2, cv2.COLOR_BayerGR2RGB),
    "bayer_grbg16": _Layout(1, 2, cv2.COLOR_BayerGB2RGB),
    "yuv422": _Layout(2, 1, cv2.COLOR_YUV2RGB_UYVY),
    "uyvy": _Layout(2, 1, cv2.COLOR_YUV2RGB_UYVY),
    "yuv422_yuy2": _Layout(2, 1, cv2.COLOR_YUV2RGB_YUY2),
    "yuyv": _Layout(2, 1, cv2.COLOR_YUV2RGB_YUY2),
}
SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(_ENCODINGS)
_GENERIC_PREFIXES = ("8U", "8S", "16U", "16S", "32S", "32F", "64F")

#: Keys used as ``ImageConversionError.reason``.
REJECT_REASONS: tuple[str, ...] = ("encoding", "zero_size", "too_large", "step", "truncated",
                                   "size_mismatch", "format", "corrupt")

DEFAULT_MAX_PIXELS = 4096 * 4096


class ImageConversionError(ValueError):
    """A message that cannot be turned into an RGB frame; ``reason`` is a key of REJECT_REASONS."""

    def __init__(self, reason: str, message: str) -> None:
        """Store the reason key next to the human-readable message."""
        super().__init__(message)
        self.reason = reason


def _check_dims(height: int, width: int, max_pixels: int) -> None:
    """Reject empty and oversized frames."""
    if height <= 0 or width <= 0:
        raise ImageConversionError("zero_size", f"image has zero size ({width}x{height})")
    if height * width > max_pixels:
        raise ImageConversionError(
            "too_large", f"image {width}x{height} has {height * width} pixels, over the limit "
            f"of {max_pixels} (parameter max_frame_pixels)")


def image_to_rgb(msg, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Convert a sensor_msgs/Image to a contiguous (H, W, 3) uint8 RGB array (a copy).

    Args:
        msg: sensor_msgs.msg.Image (any object with height, width, encoding, step, data).
        max_pixels: frames with more than this many pixels are rejected.

    Raises:
        ImageConversionError: on an unsupported encoding, zero size, a frame over ``max_pixels``, a
            step shorter than one row, data shorter than ``step * height`` (truncated) or of
            another size, an odd width for 4:2:2 YUV or a Bayer frame under 2x2 pixels.
    """
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    encoding = str(msg.encoding)
    if encoding not in _ENCODINGS:
        why = (" (an OpenCV type without colour meaning: cv_bridge refuses it as well)"
               if encoding.startswith(_GENERIC_PREFIXES) else "")
        raise ImageConversionError(
            "encoding", f"unsupported encoding {encoding!r}{why} (supported: "
            f"{', '.join(SUPPORTED_ENCODINGS)})")
    _check_dims(height, width, max_pixels)
    channels, depth, code = _ENCODINGS[encoding]
    row_bytes = width * channels * depth
    if step < row_bytes:
        raise ImageConversionError(
            "step", f"step {step} is smaller than one {encoding} row of {width} pixels "
            f"({row_bytes} bytes)")
    data = np.frombuffer(msg.data, dtype=np.uint8)
    expected = step * height
    if data.size < expected:
        raise ImageConversionError(
            "truncated", f"data has {data.size} bytes, step*height needs {expected} "
            f"({width}x{height} {encoding}, step {step})")
    if data.size != expected:
        raise ImageConversionError(
            "size_mismatch", f"data has {data.size} bytes but step*height is {expected}")
    if channels == 2 and width % 2:
        raise ImageConversionError("size_mismatch", f"{encoding} needs an even width, got {width}")
    if code in _BAYER_CODES and (width < 2 or height < 2):
        raise ImageConversionError("size_mismatch",
                                   f"{encoding} needs at least 2x2 pixels, got {width}x{height}")
    # Strip the row padding: (H, step) -> (H, W * ch * depth) bytes.
    rows = data.reshape(height, step)[:, :row_bytes]
    if depth == 2:
        order = ">" if msg.is_bigendian else "<"
        # (H, W * ch * 2) bytes -> (H, W, ch) uint16 in native byte order
        pixels = np.ascontiguousarray(rows).view(f"{order}u2").astype(np.uint16)
        pixels = pixels.reshape(height, width, channels)
    else:
        pixels = rows.reshape(height, width, channels)  # (H, W, ch)
    if code is not None:
        if channels == 1:
            pixels = pixels[:, :, 0]  # (H, W)
        pixels = cv2.cvtColor(np.ascontiguousarray(pixels), code)  # (H, W, 3)
    if depth == 2:  # cv_bridge: convertTo(CV_8U, 255/65535) after the colour conversion
        return cv2.convertScaleAbs(pixels, alpha=255.0 / 65535.0)
    return np.ascontiguousarray(pixels)


_BAYER_CODES = frozenset({cv2.COLOR_BayerBG2RGB, cv2.COLOR_BayerRG2RGB, cv2.COLOR_BayerGR2RGB,
                          cv2.COLOR_BayerGB2RGB})


def _png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG IHDR chunk, or None when the header is not PNG."""
    if len(data) >= 24 and data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        return struct.unpack(">II", data[16:24])
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the first JPEG start-of-frame marker, or None when none is found."""
    if len(data) < 4 or data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 9 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return width, height
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        seg_len = struct.unpack(">H", data[i + 2:i + 4])[0]
        i += 2 + seg_len
    return None


def compressed_to_rgb(msg, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode a sensor_msgs/CompressedImage (JPEG or PNG) to a (H, W, 3) uint8 RGB array.

    The image size is read from the file header and checked against ``max_pixels`` before decoding,
    so a small message announcing a huge image cannot make the node allocate it.

    Raises:
        ImageConversionError: on an unsupported format, empty data, a frame over ``max_pixels``, a
        header
            that cannot be parsed, a truncated JPEG (no end-of-image marker) or data OpenCV cannot
            decode.
    """
    fmt = str(msg.format).lower()
    data = bytes(msg.data)
    if fmt and "jpeg" not in fmt and "jpg" not in fmt and "png" not in fmt:
        raise ImageConversionError(
            "format", f"unsupported compressed format {msg.format!r} (supported: jpeg, png)")
    if not data:
        raise ImageConversionError("zero_size", "compressed image has no data")
    size = _png_size(data)
    kind = "png"
    if size is None:
        size, kind = _jpeg_size(data), "jpeg"
    if size is None:
        raise ImageConversionError("corrupt", f"data ({len(data)} bytes) is neither a readable "
                                   f"JPEG nor a PNG header (format {msg.format!r})")
    _check_dims(size[1], size[0], max_pixels)
    # libjpeg fills a truncated stream with grey and only warns: require the end-of-image marker.
    if kind == "jpeg" and b"\xff\xd9" not in data[-64:]:
        raise ImageConversionError("truncated", "JPEG data ends without an end-of-image marker")
    bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None or bgr.size == 0:
        raise ImageConversionError("corrupt", f"OpenCV cannot decode the {kind} data "
                                   f"({len(data)} bytes)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def rgb_to_image(rgb: np.ndarray, header=None, encoding: str = "rgb8"):
    """Build a sensor_msgs/Image from an (H, W, 3) uint8 RGB array (encoding rgb8 or bgr8)."""
    from sensor_msgs.msg import Image

    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    if encoding == "bgr8":
        rgb = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    elif encoding != "rgb8":
        raise ValueError(f"encoding must be rgb8 or bgr8, got {encoding!r}")
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(rgb.shape[0]), int(rgb.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(rgb.shape[1] * 3)
    msg.data = np.ascontiguousarray(rgb).tobytes()
    return msg
