"""Hostile offline inputs for the reliability run: bags (rosbags, no ROS), image folders, videos.

Each builder writes one input into a folder and returns what a correct tool must report about it:
``Hostile(path, good, skipped, fps)`` - the number of usable frames, the skipped inputs per reason
and, for bags, the frame rate the header stamps give.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

H, W = 48, 64


@dataclass
class Hostile:
    """One hostile input and the outcome a correct tool reports."""

    path: Path
    good: int
    skipped: dict[str, int] = field(default_factory=dict)
    fps: float | None = None


def _typestore():
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_KILTED)


def image_cdr(i: int, t: float) -> bytes:
    """CDR of an (H, W) bgr8 Image with a frame-dependent gradient, header stamp ``t``."""
    ts = _typestore()
    types = ts.types
    sec = int(t)
    header = types["std_msgs/msg/Header"](stamp=types["builtin_interfaces/msg/Time"](
        sec=sec, nanosec=int(round((t - sec) * 1e9))), frame_id="cam")
    y, x = np.mgrid[0:H, 0:W]
    bgr = np.stack([(x * 3 + i * 17) % 256, (y * 5) % 256, np.full((H, W), 9 * i % 256)],
                   axis=2).astype(np.uint8)
    msg = types["sensor_msgs/msg/Image"](header=header, height=H, width=W, encoding="bgr8",
                                         is_bigendian=0, step=W * 3, data=bgr.reshape(-1))
    return ts.serialize_cdr(msg, "sensor_msgs/msg/Image")


def _write_bag(path: Path, storage: str, payloads: list[bytes], times_ns: list[int]) -> Path:
    from rosbags.rosbag2 import StoragePlugin, Writer

    plugin = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}[storage]
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        conn = writer.add_connection("/cam/image_raw", "sensor_msgs/msg/Image",
                                     typestore=_typestore())
        for raw, t in zip(payloads, times_ns):
            writer.write(conn, t, raw)
    return path


def hostile_bags(root: Path, storage: str) -> dict[str, Hostile]:
    """Bags whose Image payloads are not Images, and bags whose rate metadata lies."""
    rng = np.random.default_rng(21)
    ts = _typestore()
    string = ts.serialize_cdr(ts.types["std_msgs/msg/String"](data="not an image " * 8),
                              "std_msgs/msg/String")
    good = [image_cdr(i, 100.0 + 0.1 * i) for i in range(6)]
    step = [int(5e9) + i * 100_000_000 for i in range(6)]
    out: dict[str, Hostile] = {}

    def bag(name: str, payloads: list[bytes], times: list[int], n_good: int,
            skipped: dict[str, int], fps: float | None = None) -> None:
        out[name] = Hostile(_write_bag(root / f"{storage}_{name}", storage, payloads, times),
                            n_good, skipped, fps)

    bag("random_bytes", [rng.bytes(200 + 50 * i) for i in range(6)], step, 0, {"not_cdr": 6})
    bag("string_cdr", [string] * 6, step, 0, {"not_cdr": 6})
    bag("empty_payloads", [b""] * 6, step, 0, {"not_cdr": 6})
    bag("truncated_cdr", [g[:len(g) // 2] for g in good], step, 0, {"not_cdr": 6})
    bag("bad_encapsulation", [b"\x07\x09" + g[2:] for g in good], step, 0, {"not_cdr": 6})
    bag("mixed", [good[0], rng.bytes(99), good[1], string, good[2], b""], step, 3,
        {"not_cdr": 3}, 10.0)
    bag("one_receive_time", good, [int(5e9)] * 6, 6, {}, 10.0)
    bag("stamps_1us_apart", [image_cdr(i, 100.0 + 1e-6 * i) for i in range(6)], step, 6, {},
        10.0)  # 1e6 fps from the stamps is out of range: the receive times' 10 fps
    bag("no_clock", [image_cdr(i, 100.0) for i in range(6)], [int(5e9)] * 6, 6, {}, 30.0)
    bag("overstated_count", good, step, 6, {}, 10.0)
    meta = out["overstated_count"].path / "metadata.yaml"
    meta.write_text(meta.read_text().replace("message_count: 6", "message_count: 1000000000"))
    return out


def png_declaring(width: int, height: int) -> bytes:
    """A small PNG whose CRC-valid IHDR declares ``width`` x ``height`` (a decompression bomb)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + chunk(b"IEND", b""))


def hostile_folders(root: Path) -> dict[str, Hostile]:
    """Folders of corrupt, truncated, empty and oversized images (with and without good ones)."""
    good = cv2.imencode(".png", np.full((H, W, 3), 90, np.uint8))[1].tobytes()
    jpeg = cv2.imencode(".jpg", np.full((H, W, 3), 90, np.uint8))[1].tobytes()
    bmp_huge = bytearray(cv2.imencode(".bmp", np.zeros((4, 4, 3), np.uint8))[1].tobytes())
    bmp_huge[18:26] = struct.pack("<ii", 30000, 30000)
    bad = {"random.png": os.urandom(400), "empty.png": b"", "half.png": good[:len(good) // 2],
           "header_only.jpg": jpeg[:200], "huge.png": png_declaring(12000, 12000),
           "huge.bmp": bytes(bmp_huge), "text.jpg": b"hello world\n" * 20}
    reasons = {"huge.png": "too_large", "huge.bmp": "too_large", "header_only.jpg": "truncated"}
    out: dict[str, Hostile] = {}

    def folder(name: str, files: dict[str, bytes], n_good: int, skipped: dict[str, int]) -> None:
        path = root / name
        path.mkdir(parents=True)
        for fname, data in files.items():
            (path / fname).write_bytes(data)
        out[name] = Hostile(path, n_good, skipped)

    for fname, data in bad.items():
        folder(f"only_{fname.replace('.', '_')}", {f"{i}_{fname}": data for i in range(3)}, 0,
               {reasons.get(fname, "corrupt"): 3})
    mixed = {f"{i:02d}.png": good for i in range(18)}
    mixed.update({f"{i:02d}b_{k}": v for i, (k, v) in enumerate(bad.items())})
    counts: dict[str, int] = {}
    for k in bad:
        counts[reasons.get(k, "corrupt")] = counts.get(reasons.get(k, "corrupt"), 0) + 1
    folder("mixed", mixed, 18, counts)
    return out


def oversized_video(root: Path, side: int = 4200) -> Hostile:
    """One black MJPG frame of ``side`` x ``side`` (over the default 4096x4096 bound)."""
    path = root / f"video_{side}.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (side, side))
    writer.write(np.zeros((side, side, 3), np.uint8))
    writer.release()
    return Hostile(path, 0, {})


__all__ = ["Hostile", "hostile_bags", "hostile_folders", "image_cdr", "oversized_video",
           "png_declaring"]
