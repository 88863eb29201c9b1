"""What a JPEG or PNG will cost to decode, read from its header without decoding it.

Decoding cost is bounded by the declared image size and, for progressive JPEGs, by the number of
scans: libjpeg revisits the whole coefficient buffer for every scan, so a 700 KB file of 4096x4096
pixels with 20,000 tiny duplicated scans decodes for ~17 s. The node reads both numbers here, in
microseconds (C-speed byte searches, at most one pass over the segments before the first scan),
and refuses the message before any decoder sees it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SOI = b"\xff\xd8"
JPEG_SOS = b"\xff\xda"
# Encoders write 1 scan (baseline) or ~10 (libjpeg's progressive script, mozjpeg's optimised
# ones); 64 leaves room for any sane encoder and bounds the decode cost at 64 passes.
MAX_JPEG_SCANS = 64
# Start-of-frame markers: C0-CF except DHT (C4), JPG (C8) and DAC (CC).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field.
_STANDALONE = frozenset({0x01, 0xD8, *range(0xD0, 0xD8)})


@dataclass(frozen=True)
class CompressedHeader:
    """Facts read from a compressed image's header.

    Attributes:
        kind: ``"jpeg"`` or ``"png"``.
        width: declared width in pixels.
        height: declared height in pixels.
        scans: JPEG start-of-scan markers counted (an upper bound: a marker pattern inside an
            APPn payload, e.g. an EXIF thumbnail, is counted too); 1 for PNG.
    """

    kind: str
    width: int
    height: int
    scans: int


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG IHDR chunk, or None when the header is not PNG."""
    if len(data) >= 24 and data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR":
        return struct.unpack(">II", data[16:24])
    return None


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the first JPEG start-of-frame marker, or None when none is found.

    Walks the length-prefixed segments from the start of the file; stops at the first scan
    (the frame header always comes before it).
    """
    if len(data) < 4 or data[:2] != JPEG_SOI:
        return None
    i = 2
    while i + 9 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _SOF_MARKERS:
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return width, height
        if marker == 0xDA:  # scan before any frame header
            return None
        if marker in _STANDALONE:
            i += 2
            continue
        seg_len = struct.unpack(">H", data[i + 2:i + 4])[0]
        i += 2 + seg_len
    return None


def jpeg_scans(data: bytes) -> int:
    """Number of start-of-scan markers (``FF DA``) in a JPEG.

    Inside entropy-coded data an ``FF`` byte is always followed by ``00`` (stuffing) or a restart
    marker, so every ``FF DA`` there is a real scan; only segment payloads can add false counts.
    """
    return data.count(JPEG_SOS)


def read_header(data: bytes) -> CompressedHeader | None:
    """Parse a PNG or JPEG header; None when ``data`` is neither."""
    size = png_size(data)
    if size is not None:
        return CompressedHeader("png", size[0], size[1], 1)
    size = jpeg_size(data)
    if size is not None:
        return CompressedHeader("jpeg", size[0], size[1], jpeg_scans(data))
    return None


__all__ = ["CompressedHeader", "MAX_JPEG_SCANS", "jpeg_scans", "jpeg_size", "png_size",
           "read_header"]
