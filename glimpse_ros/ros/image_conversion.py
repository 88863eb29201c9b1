"""sensor_msgs Image / CompressedImage -> RGB uint8 numpy arrays, with the semantics of cv_bridge.

cv_bridge is not available from PyPI, so the node converts with numpy and OpenCV. The colour
conversions are the ones cv_bridge uses for ``desired_encoding="rgb8"`` (``cv::cvtColor`` with the
same codes), so a frame gives the same pixels here as through
``cv_bridge.CvBridge().imgmsg_to_cv2(msg, "rgb8")``.

ROS encoding names for packed 4:2:2 YUV (sensor_msgs/image_encodings.hpp): ``yuv422`` and ``uyvy``
are U0 Y0 V0 Y1 byte order, ``yuv422_yuy2`` and ``yuyv`` are Y0 U0 Y1 V0.

Every rejection raises :class:`ImageConversionError` (a ``ValueError``) whose ``reason`` is one
short key (see :data:`REJECT_REASONS`) so that the node can count rejected frames per cause in its
diagnostics.
"""

from __future__ import annotations

import struct

import cv2
import numpy as np

# encoding -> (channels, cv2 conversion code to RGB or None for a plain copy)
_ENCODINGS: dict[str, tuple[int, int | None]] = {
    "rgb8": (3, None),
    "bgr8": (3, cv2.COLOR_BGR2RGB),
    "rgba8": (4, cv2.COLOR_RGBA2RGB),
    "bgra8": (4, cv2.COLOR_BGRA2RGB),
    "mono8": (1, cv2.COLOR_GRAY2RGB),
    "8UC1": (1, cv2.COLOR_GRAY2RGB),
    "8UC3": (3, cv2.COLOR_BGR2RGB),  # cv_bridge treats untyped 3-channel data as BGR
    "yuv422": (2, cv2.COLOR_YUV2RGB_UYVY),
    "uyvy": (2, cv2.COLOR_YUV2RGB_UYVY),
    "yuv422_yuy2": (2, cv2.COLOR_YUV2RGB_YUY2),
    "yuyv": (2, cv2.COLOR_YUV2RGB_YUY2),
}
SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(_ENCODINGS)

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
            another size, or an odd width for 4:2:2 YUV.
    """
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    encoding = str(msg.encoding)
    if encoding not in _ENCODINGS:
        raise ImageConversionError(
            "encoding", f"unsupported encoding {encoding!r} (supported: "
            f"{', '.join(SUPPORTED_ENCODINGS)})")
    _check_dims(height, width, max_pixels)
    channels, code = _ENCODINGS[encoding]
    row_bytes = width * channels
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
    # Strip the row padding: (H, step) -> (H, W, channels); copies only what cvtColor needs.
    rows = data.reshape(height, step)[:, :row_bytes]
    pixels = rows.reshape(height, width, channels)  # (H, W, ch)
    if code is None:
        return np.ascontiguousarray(pixels)
    if channels == 1:
        pixels = pixels[:, :, 0]  # (H, W)
    return cv2.cvtColor(np.ascontiguousarray(pixels), code)


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
