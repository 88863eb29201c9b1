"""Read one image file of a folder with a pixel bound checked *before* decoding.

A 400 KB PNG can declare 12000x12000 pixels (432 MB once decoded): the declared size is read from
the file's header (PNG, JPEG, BMP, PNM, TIFF) and compared with the limit the node applies to
camera frames (``max_frame_pixels``, default
:data:`~glimpse_ros.sources.image_decoding.DEFAULT_MAX_PIXELS`), so an oversized file never reaches
the decoder. Failures raise :class:`~glimpse_ros.sources.image_decoding.ImageConversionError` with
the same reason keys as the node's conversions (``corrupt``, ``too_large``, ``zero_size``,
``truncated``).
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import cv2
import numpy as np

from glimpse_ros.sources.compressed_header import read_header
from glimpse_ros.sources.image_decoding import (DEFAULT_MAX_PIXELS, MAX_HEADER_BYTES,
                                                ImageConversionError, _check_dims)

_PNM = re.compile(rb"P[1-6](?:\s+|#[^\n]*\n)+(\d+)(?:\s+|#[^\n]*\n)+(\d+)")
_TIFF_WIDTH, _TIFF_HEIGHT = 256, 257


def _bmp_size(data: bytes) -> tuple[int, int] | None:
    if len(data) >= 26 and data[:2] == b"BM":
        width, height = struct.unpack("<ii", data[18:26])
        return width, abs(height)  # a negative height means rows stored top-down
    return None


def _pnm_size(data: bytes) -> tuple[int, int] | None:
    match = _PNM.match(data[:4096])
    return (int(match.group(1)), int(match.group(2))) if match else None


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    """Width and height tags of the first IFD of a classic (not Big) TIFF."""
    order = {b"II*\x00": "<", b"MM\x00*": ">"}.get(data[:4])
    if order is None or len(data) < 8:
        return None
    offset = struct.unpack(order + "I", data[4:8])[0]
    if offset + 2 > len(data):
        return None
    count = struct.unpack(order + "H", data[offset:offset + 2])[0]
    found: dict[int, int] = {}
    for i in range(count):
        entry = data[offset + 2 + 12 * i:offset + 14 + 12 * i]
        if len(entry) < 12:
            return None
        tag, kind = struct.unpack(order + "HH", entry[:4])
        if tag in (_TIFF_WIDTH, _TIFF_HEIGHT):  # SHORT (3) or LONG (4), left-justified
            fmt = "H" if kind == 3 else "I"
            found[tag] = struct.unpack(order + fmt, entry[8:8 + struct.calcsize(fmt)])[0]
    if _TIFF_WIDTH in found and _TIFF_HEIGHT in found:
        return found[_TIFF_WIDTH], found[_TIFF_HEIGHT]
    return None


def declared_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) an image file's header declares, or None when it is none of the formats."""
    header = read_header(data)
    if header is not None:
        return header.width, header.height
    for parse in (_bmp_size, _pnm_size, _tiff_size):
        size = parse(data)
        if size is not None:
            return size
    return None


def read_image_file(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode ``path`` to a (H, W, 3) uint8 **BGR** array, its declared size checked first.

    Raises:
        ImageConversionError: ``corrupt`` (no readable header, or OpenCV cannot decode it),
            ``zero_size`` or ``too_large`` (declared size over ``max_pixels``), ``truncated``
            (a JPEG without end-of-image marker, as the node refuses it).
    """
    with open(path, "rb") as f:
        head = f.read(MAX_HEADER_BYTES)
    size = declared_size(head)
    if size is None:
        raise ImageConversionError("corrupt", f"{len(head)} bytes that are not a PNG, JPEG, "
                                   "BMP, PNM or TIFF header")
    _check_dims(size[1], size[0], max_pixels)
    if head[:2] == b"\xff\xd8":  # libjpeg fills a truncated stream with grey: require the EOI
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - 64))
            if b"\xff\xd9" not in f.read():
                raise ImageConversionError("truncated", "JPEG ends without an end-of-image "
                                           "marker")
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None or bgr.size == 0:
        raise ImageConversionError("corrupt", "OpenCV cannot decode it")
    if bgr.shape[0] * bgr.shape[1] > max_pixels:  # a header that understated the size
        raise ImageConversionError("too_large", f"decoded to {bgr.shape[1]}x{bgr.shape[0]}, "
                                   f"over the limit of {max_pixels} pixels")
    return bgr


__all__ = ["declared_size", "read_image_file"]
