"""sensor_msgs Image / CompressedImage -> RGB uint8 numpy arrays, with the semantics of cv_bridge.

Pure numpy/OpenCV on any object with the messages' fields (rclpy messages, or the ones rosbags
deserialises): both the node and the offline bag reader decode with it; nothing here imports ROS.

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

from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

from glimpse_ros.sources.compressed_header import MAX_JPEG_SCANS, CompressedHeader, read_header


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
                                   "size_mismatch", "format", "corrupt", "too_many_scans")

DEFAULT_MAX_PIXELS = 4096 * 4096
# Compressed data may exceed a raw frame by its headers (EXIF, ICC profile) at most.
MAX_HEADER_BYTES = 1 << 20


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


@dataclass(frozen=True)
class CompressedFrame:
    """A CompressedImage whose header passed the checks, waiting to be decoded.

    Produced by :func:`inspect_compressed` in the subscription callback (cheap); decoded by
    :func:`decode_compressed` off the executor thread.
    """

    data: bytes
    header: CompressedHeader
    format: str


def inspect_compressed(msg, max_pixels: int = DEFAULT_MAX_PIXELS) -> CompressedFrame:
    """Check a sensor_msgs/CompressedImage without decoding it (microseconds per message).

    The declared image size is checked against ``max_pixels`` and a JPEG's scan count against
    :data:`~glimpse_ros.sources.compressed_header.MAX_JPEG_SCANS`, so that a small message
    announcing a huge image, or a progressive JPEG with thousands of scans, never reaches the
    decoder.

    Raises:
        ImageConversionError: on an unsupported format, empty data, more bytes than a raw frame of
            ``max_pixels`` plus 1 MiB, a header that cannot be parsed, a frame over
            ``max_pixels`` (``too_large``), too many JPEG scans (``too_many_scans``) or a JPEG
            without end-of-image marker (``truncated``).
    """
    fmt = str(msg.format).lower()
    if fmt and "jpeg" not in fmt and "jpg" not in fmt and "png" not in fmt:
        raise ImageConversionError(
            "format", f"unsupported compressed format {msg.format!r} (supported: jpeg, png)")
    data = bytes(msg.data)
    if not data:
        raise ImageConversionError("zero_size", "compressed image has no data")
    if len(data) > 3 * max_pixels + MAX_HEADER_BYTES:
        raise ImageConversionError(
            "too_large", f"compressed image of {len(data)} bytes is larger than a raw frame of "
            f"max_frame_pixels={max_pixels}")
    header = read_header(data)
    if header is None:
        raise ImageConversionError("corrupt", f"data ({len(data)} bytes) is neither a readable "
                                   f"JPEG nor a PNG header (format {msg.format!r})")
    _check_dims(header.height, header.width, max_pixels)
    if header.scans > MAX_JPEG_SCANS:
        raise ImageConversionError(
            "too_many_scans", f"JPEG has {header.scans} scans, over the limit of "
            f"{MAX_JPEG_SCANS} (decoding cost grows with every scan)")
    # libjpeg fills a truncated stream with grey and only warns: require the end-of-image marker.
    if header.kind == "jpeg" and b"\xff\xd9" not in data[-64:]:
        raise ImageConversionError("truncated", "JPEG data ends without an end-of-image marker")
    return CompressedFrame(data, header, str(msg.format))


def decode_compressed(frame: CompressedFrame) -> np.ndarray:
    """Decode an inspected compressed frame to a (H, W, 3) uint8 RGB array.

    Raises:
        ImageConversionError: ``corrupt`` when OpenCV cannot decode the data, or when it decodes
            to another size than the header declared.
    """
    bgr = cv2.imdecode(np.frombuffer(frame.data, dtype=np.uint8), cv2.IMREAD_COLOR)
    kind = frame.header.kind
    if bgr is None or bgr.size == 0:
        raise ImageConversionError("corrupt", f"OpenCV cannot decode the {kind} data "
                                   f"({len(frame.data)} bytes)")
    if bgr.shape[:2] != (frame.header.height, frame.header.width):
        raise ImageConversionError(
            "corrupt", f"{kind} decoded to {bgr.shape[1]}x{bgr.shape[0]}, its header declares "
            f"{frame.header.width}x{frame.header.height}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def compressed_to_rgb(msg, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Check and decode a sensor_msgs/CompressedImage (JPEG or PNG) to (H, W, 3) uint8 RGB.

    :func:`inspect_compressed` then :func:`decode_compressed`; raises what they raise.
    """
    return decode_compressed(inspect_compressed(msg, max_pixels))
