"""Random malformed Image / CompressedImage messages, interleaved with valid frames, for fuzzing.

Every generated case carries the outcome the node's own converter gives for it (``expected``: the
rejection reason key, or None when the frame is accepted), computed here with the same functions
the node uses. A converter exception other than :class:`ImageConversionError` is not caught here:
it would also escape the node's subscription callback, so the generator's tests surface it.

Valid frames all have the same size (W x H) but random encodings and row padding, so the
recognizer never resets on a size change during a fuzz run. A mutation that happens to decode
(e.g. flipped bits inside the entropy-coded part of a JPEG) counts as a valid frame; one that
decodes to another size is discarded and drawn again.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from sensor_msgs.msg import CompressedImage, Image

from glimpse_ros.sources.image_decoding import (SUPPORTED_ENCODINGS, ImageConversionError,
                                                compressed_to_rgb, image_to_rgb)

# encoding -> bytes per pixel, for building valid raw frames.
VALID_ENCODINGS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1, "yuv422": 2,
                   "yuyv": 2, "uyvy": 2, "yuv422_yuy2": 2, "bayer_rggb8": 1, "mono16": 2,
                   "rgb16": 6, "bgra16": 8, "bayer_grbg16": 2}
UNSUPPORTED_ENCODINGS = ("8UC3", "8UC1", "16UC1", "32FC1", "64FC4", "nv21", "RGB8", " rgb8",
                         "rgb8\x00", "jpeg", "")
U32 = 2**32 - 1
RAW_MUTATIONS = ("bad_encoding", "short_step", "truncated", "oversized", "zero_size",
                 "huge_dims", "huge_step", "odd_yuv", "random_fields")
COMPRESSED_MUTATIONS = ("garbage", "jpeg_garbage", "truncated_jpeg", "bitflip_jpeg", "bomb_header",
                        "bad_format", "empty", "png_garbage", "truncated_png", "scan_bomb")


def scan_bomb_jpeg(width: int, height: int, extra_scans: int) -> bytes:
    """A progressive JPEG with ``extra_scans`` copies of its smallest AC scan appended.

    Each copy is a few bytes but costs libjpeg a pass over the whole coefficient buffer: at
    4096x4096 with 20,000 copies the file is ~0.5 MB and decodes for ~15 s. (Repeated scans are
    legal enough: libjpeg warns about the progression and decodes.)
    """
    img = np.zeros((height, width, 3), np.uint8)
    img[::64, ::64] = 200
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1,
                                         cv2.IMWRITE_JPEG_QUALITY, 50])
    assert ok
    data = buf.tobytes()
    starts, i = [], data.find(b"\xff\xda")
    while i >= 0:
        starts.append(i)
        i = data.find(b"\xff\xda", i + 2)
    scans = []
    for start, end in zip(starts, starts[1:] + [len(data) - 2]):
        scan = data[start:end]
        table = scan.find(b"\xff\xc4")  # a Huffman table segment may follow the scan
        scans.append(scan if table < 0 else scan[:table])
    smallest = min(scans[1:], key=len)  # scans[0] is the DC scan
    return data[:-2] + smallest * extra_scans + b"\xff\xd9"


@dataclass
class FuzzCase:
    """One message to publish, what was done to it and what the node's converter makes of it."""

    msg: Any
    kind: str  # "valid" or a mutation name
    expected: str | None  # rejection reason key; None = accepted (a frame the node processes)


class FuzzGenerator:
    """Seeded source of valid and malformed image messages of one frame size."""

    def __init__(self, seed: int, width: int = 32, height: int = 24, max_pixels: int = 20000,
                 compressed: bool = False) -> None:
        """Frames are ``width`` x ``height``; ``max_pixels`` is the node's max_frame_pixels."""
        self.rng = np.random.default_rng(seed)
        self.width, self.height, self.max_pixels = width, height, max_pixels
        self.compressed = compressed

    # ----- valid frames -----
    def _pixels(self) -> np.ndarray:
        return self.rng.integers(0, 256, (self.height, self.width, 3), dtype=np.uint8)

    def valid_raw(self) -> Image:
        """An Image of a random supported encoding with random row padding."""
        encoding = str(self.rng.choice(list(VALID_ENCODINGS)))
        channels = VALID_ENCODINGS[encoding]
        row = self.width * channels
        step = row + int(self.rng.integers(0, 3)) * int(self.rng.integers(0, 9))
        data = self.rng.integers(0, 256, (self.height, step), dtype=np.uint8)  # (H, step)
        return Image(height=self.height, width=self.width, encoding=encoding, step=step,
                     data=data.tobytes())

    def valid_compressed(self) -> CompressedImage:
        """A JPEG (mostly) or PNG CompressedImage of the frame size."""
        png = self.rng.random() < 0.3
        ok, buf = cv2.imencode(".png" if png else ".jpg", self._pixels())
        assert ok
        return CompressedImage(format="png" if png else "jpeg", data=buf.tobytes())

    def valid(self) -> Any:
        """A valid message of the generator's kind."""
        return self.valid_compressed() if self.compressed else self.valid_raw()

    # ----- malformed messages -----
    def _garbage(self, low: int = 0, high: int = 2048) -> bytes:
        return self.rng.integers(0, 256, int(self.rng.integers(low, high)), np.uint8).tobytes()

    def _text(self) -> str:
        chars = string.printable + "\u00e9\u4e2d"
        return "".join(self.rng.choice(list(chars), int(self.rng.integers(0, 40))))

    def malformed_raw(self, kind: str) -> Image:
        """Apply raw mutation ``kind`` (one of RAW_MUTATIONS) to a valid Image."""
        msg, rng = self.valid_raw(), self.rng
        data = bytes(msg.data)
        if kind == "bad_encoding":
            msg.encoding = (str(rng.choice(UNSUPPORTED_ENCODINGS)) if rng.random() < 0.6
                            else self._text())
            if msg.encoding in SUPPORTED_ENCODINGS:
                msg.encoding = "32FC1"
        elif kind == "short_step":
            msg.step = int(rng.integers(0, msg.width * VALID_ENCODINGS[msg.encoding]))
        elif kind == "truncated":
            msg.data = data[:int(rng.integers(0, len(data)))]
        elif kind == "oversized":
            msg.data = data + self._garbage(1, 4096)
        elif kind == "zero_size":
            msg.width, msg.height = [(0, msg.height), (msg.width, 0), (0, 0)][int(rng.integers(3))]
        elif kind == "huge_dims":
            msg.width = int(rng.integers(self.max_pixels // max(msg.height, 1) + 1, U32))
            msg.height = int(rng.integers(1, U32)) if rng.random() < 0.5 else msg.height
        elif kind == "huge_step":
            msg.step = int(rng.integers(msg.step + 1, U32))
        elif kind == "odd_yuv":
            msg.encoding = str(rng.choice(["yuv422", "yuyv", "uyvy", "yuv422_yuy2"]))
            msg.width = self.width - 1
            msg.step = msg.width * 2
            msg.data = bytes(msg.step * msg.height)
        elif kind == "random_fields":
            msg.width, msg.height = int(rng.integers(0, 200)), int(rng.integers(0, 200))
            msg.step = int(rng.integers(0, 800)) if rng.random() < 0.8 else int(rng.integers(U32))
            msg.encoding = str(rng.choice(list(VALID_ENCODINGS) + list(UNSUPPORTED_ENCODINGS)))
            msg.data = self._garbage()
        else:
            raise ValueError(f"unknown raw mutation {kind!r}")
        return msg

    def _jpeg(self) -> bytes:
        return cv2.imencode(".jpg", self._pixels())[1].tobytes()

    def malformed_compressed(self, kind: str) -> CompressedImage:
        """Build compressed mutation ``kind`` (one of COMPRESSED_MUTATIONS)."""
        rng, fmt, jpeg = self.rng, "jpeg", self._jpeg()
        if kind == "garbage":
            fmt, data = str(rng.choice(["jpeg", "png", "jpg", ""])), self._garbage(1)
        elif kind == "jpeg_garbage":
            data = b"\xff\xd8" + self._garbage() + (b"\xff\xd9" if rng.random() < 0.5 else b"")
        elif kind == "truncated_jpeg":
            data = jpeg[:int(rng.integers(1, len(jpeg) - 2))]
        elif kind == "bitflip_jpeg":  # flip bits after the start-of-scan header only
            buf = bytearray(jpeg)
            sos = jpeg.index(b"\xff\xda")
            start = sos + 2 + int.from_bytes(jpeg[sos + 2:sos + 4], "big")
            for _ in range(int(rng.integers(1, 20))):
                buf[int(rng.integers(start, len(buf) - 2))] ^= 1 << int(rng.integers(8))
            data = bytes(buf)
        elif kind == "bomb_header":  # a small file announcing a huge image
            w, h = int(rng.integers(5000, 65536)), int(rng.integers(5000, 65536))
            if rng.random() < 0.5:
                sof = jpeg.index(b"\xff\xc0")
                size = h.to_bytes(2, "big") + w.to_bytes(2, "big")
                data = jpeg[:sof + 5] + size + jpeg[sof + 9:]
            else:
                fmt = "png"
                png = cv2.imencode(".png", self._pixels())[1].tobytes()
                data = png[:16] + w.to_bytes(4, "big") + h.to_bytes(4, "big") + png[24:]
        elif kind == "bad_format":
            fmt, data = str(rng.choice(["tiff", "bmp", "rgb8", "webp"])), jpeg
        elif kind == "empty":
            fmt, data = str(rng.choice(["jpeg", "png"])), b""
        elif kind == "png_garbage":
            png = cv2.imencode(".png", self._pixels())[1].tobytes()
            fmt, data = "png", png[:33] + self._garbage(1)
        elif kind == "scan_bomb":
            data = scan_bomb_jpeg(self.width, self.height, int(rng.integers(100, 400)))
        elif kind == "truncated_png":
            png = cv2.imencode(".png", self._pixels())[1].tobytes()
            fmt, data = "png", png[:int(rng.integers(1, len(png) - 12))]
        else:
            raise ValueError(f"unknown compressed mutation {kind!r}")
        return CompressedImage(format=fmt, data=data)

    # ----- cases -----
    def outcome(self, msg: Any) -> tuple[str | None, tuple[int, ...] | None]:
        """(rejection reason or None, decoded shape or None) as the node's converter sees it."""
        convert = compressed_to_rgb if isinstance(msg, CompressedImage) else image_to_rgb
        try:
            return None, convert(msg, self.max_pixels).shape
        except ImageConversionError as err:
            return err.reason, None

    def malformed(self) -> FuzzCase:
        """A random mutation; redrawn when it decodes to a frame of another size."""
        kinds = COMPRESSED_MUTATIONS if self.compressed else RAW_MUTATIONS
        while True:
            kind = str(self.rng.choice(kinds))
            msg = (self.malformed_compressed(kind) if self.compressed
                   else self.malformed_raw(kind))
            reason, shape = self.outcome(msg)
            if reason is not None or shape == (self.height, self.width, 3):
                return FuzzCase(msg, kind, reason)

    def sequence(self, num_malformed: int, valid_every: int = 4) -> list[FuzzCase]:
        """``num_malformed`` mutations with a valid frame after every ``valid_every`` of them."""
        cases = []
        for i in range(num_malformed):
            cases.append(self.malformed())
            if (i + 1) % valid_every == 0:
                cases.append(FuzzCase(self.valid(), "valid", None))
        return cases


__all__ = ["COMPRESSED_MUTATIONS", "FuzzCase", "FuzzGenerator", "RAW_MUTATIONS"]
