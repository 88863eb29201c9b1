"""Frame sources under hostile input: non-CDR bag payloads, lying bag rates, bad image files.

Every bad input is skipped and counted under its reason, never raised out of the iteration; the
rate of a bag comes from its header stamps, whatever ``metadata.yaml`` says.
"""

from __future__ import annotations

import os
import struct
import zlib

import cv2
import numpy as np
import pytest

pytest.importorskip("rosbags")
from bag_fixtures import frame, image_cdr, string_cdr, write_raw_bag  # noqa: E402

from glimpse_ros.sources import BagSource, FrameSource, open_source  # noqa: E402
from glimpse_ros.sources.bag_rate import DEFAULT_FPS  # noqa: E402
from glimpse_ros.sources.image_decoding import DEFAULT_MAX_PIXELS  # noqa: E402
from glimpse_ros.sources.image_file import declared_size  # noqa: E402

STORAGES = ["sqlite3", "mcap"]


def png_declaring(width: int, height: int) -> bytes:
    """A small PNG whose (valid, CRC-checked) IHDR declares ``width`` x ``height`` RGB pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
            + chunk(b"IEND", b""))


@pytest.mark.parametrize("storage", STORAGES)
def test_non_cdr_payloads_are_skipped_and_counted(tmp_path, storage: str) -> None:
    """Random bytes and a String's CDR under the Image type: skipped; the good frames remain."""
    payloads = [image_cdr(0, 100.0), os.urandom(300), string_cdr("not an image" * 4),
                b"", image_cdr(1, 100.1), os.urandom(5000)]
    times = [int(5e9) + i * 100_000_000 for i in range(len(payloads))]
    write_raw_bag(tmp_path / "bag", storage, payloads, times)
    source = BagSource(tmp_path / "bag")
    frames = list(source.items())
    assert [f.index for f in frames] == [0, 4]
    np.testing.assert_array_equal(frames[1].rgb, frame(1))
    assert source.rejections.by_reason == {"not_cdr": 4} and source.rejected == 4
    assert source.rejections.summary() == "4 skipped (4 not_cdr)"


@pytest.mark.parametrize("storage", STORAGES)
def test_bag_of_only_bad_messages_yields_nothing(tmp_path, storage: str) -> None:
    """Nothing usable: no frame and every message counted."""
    write_raw_bag(tmp_path / "bag", storage, [os.urandom(64 + i) for i in range(7)],
                  [int(1e9) + i for i in range(7)])
    source = open_source(tmp_path / "bag")
    assert list(source.items()) == [] and source.rejections.by_reason == {"not_cdr": 7}


@pytest.mark.parametrize("storage", STORAGES)
def test_rate_from_header_stamps_when_receive_times_are_equal(tmp_path, storage: str) -> None:
    """One receive time for the whole burst: the header stamps (0.1 s apart) give 10 fps."""
    payloads = [image_cdr(i, 100.0 + 0.1 * i) for i in range(6)]
    write_raw_bag(tmp_path / "bag", storage, payloads, [int(5e9)] * 6)
    source = BagSource(tmp_path / "bag")
    assert source.fps == pytest.approx(10.0, rel=1e-6)
    assert len(list(source.items())) == 6


def test_rate_default_when_no_clock_advances(tmp_path, caplog) -> None:
    """Equal header stamps and equal receive times: the default rate, with a warning."""
    write_raw_bag(tmp_path / "bag", "mcap", [image_cdr(i, 100.0) for i in range(4)],
                  [int(5e9)] * 4)
    with caplog.at_level("WARNING"):
        source = BagSource(tmp_path / "bag")
    assert source.fps == DEFAULT_FPS and "frame rate" in caplog.text


@pytest.mark.parametrize("storage", STORAGES)
def test_overstated_message_count_in_metadata(tmp_path, storage: str) -> None:
    """metadata.yaml claims 10^9 messages: the rate and count come from the messages."""
    payloads = [image_cdr(i, 100.0 + 0.04 * i) for i in range(5)]
    write_raw_bag(tmp_path / "bag", storage, payloads,
                  [int(5e9) + i * 40_000_000 for i in range(5)])
    meta = tmp_path / "bag" / "metadata.yaml"
    text = meta.read_text()
    assert text.count("message_count: 5") >= 1
    meta.write_text(text.replace("message_count: 5", "message_count: 1000000000"))
    source = BagSource(tmp_path / "bag")
    assert source.fps == pytest.approx(25.0, rel=1e-6) and source.count == 5
    assert len(list(source.items())) == 5


def test_folder_of_corrupt_images_counts_every_file(tmp_path) -> None:
    """Five corrupt PNGs: no frame, five rejections named ``corrupt``."""
    (tmp_path / "f").mkdir()
    for i in range(5):
        (tmp_path / "f" / f"{i}.png").write_bytes(os.urandom(200))
    source = FrameSource(tmp_path / "f")
    assert list(source.frames()) == [] and source.rejections.by_reason == {"corrupt": 5}


def test_mixed_folder_keeps_good_images_and_names_the_bad(tmp_path, caplog) -> None:
    """18 good images and 3 bad ones (random bytes, truncated PNG, huge declared size)."""
    (tmp_path / "f").mkdir()
    good = [np.full((12, 16, 3), 10 * i, np.uint8) for i in range(18)]
    for i, img in enumerate(good):
        cv2.imwrite(str(tmp_path / "f" / f"{i:02d}.png"), img)
    (tmp_path / "f" / "03b.png").write_bytes(os.urandom(100))
    full = cv2.imencode(".png", good[0])[1].tobytes()
    (tmp_path / "f" / "07b.png").write_bytes(full[:len(full) // 2])
    (tmp_path / "f" / "11b.png").write_bytes(png_declaring(12000, 12000))
    with caplog.at_level("WARNING"):
        source = FrameSource(tmp_path / "f")
        frames = list(source.frames())
    assert len(frames) == 18
    for got, want in zip(frames, good):
        np.testing.assert_array_equal(got, want)
    assert source.rejections.by_reason == {"corrupt": 2, "too_large": 1}
    assert "11b.png" in caplog.text and str(DEFAULT_MAX_PIXELS) in caplog.text


def test_huge_png_is_refused_from_its_header(tmp_path) -> None:
    """A 12000x12000 declaration is refused before decoding; a lower bound applies as given."""
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "bomb.png").write_bytes(png_declaring(12000, 12000))
    cv2.imwrite(str(tmp_path / "f" / "small.png"), np.zeros((20, 30, 3), np.uint8))
    source = FrameSource(tmp_path / "f")
    assert [f.shape for f in source.frames()] == [(20, 30, 3)]
    assert source.rejections.by_reason == {"too_large": 1}
    tight = FrameSource(tmp_path / "f", max_pixels=599)
    assert list(tight.frames()) == [] and tight.rejections.by_reason == {"too_large": 2}


def test_video_over_the_pixel_bound_is_refused_at_open(tmp_path) -> None:
    """A video whose frames exceed the bound: ValueError naming size and limit."""
    path = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    for _ in range(3):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    assert len(list(FrameSource(path).frames())) == 3
    with pytest.raises(ValueError, match=r"64x48 = 3072 pixels, over the limit of 3071"):
        open_source(path, max_pixels=3071)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".ppm", ".pgm", ".tif"])
def test_declared_size_matches_what_opencv_writes(ext: str) -> None:
    """Header sizes of every folder format agree with the image OpenCV encoded."""
    img = np.zeros((37, 53, 3), np.uint8)
    if ext == ".pgm":
        img = img[..., 0]
    data = cv2.imencode(ext, img)[1].tobytes()
    assert declared_size(data) == (53, 37)
    assert declared_size(b"GIF89a" + bytes(40)) is None


def test_rate_ignores_stamps_read_from_non_image_messages(tmp_path) -> None:
    """A String's CDR among images yields a stray 'stamp': the rate is still the images' 10 fps."""
    text = string_cdr("not an image " * 8)  # read as a stamp: 105.54 s
    payloads = [image_cdr(0, 100.0), text, image_cdr(1, 100.1), text, image_cdr(2, 100.2)]
    write_raw_bag(tmp_path / "bag", "mcap", payloads, [int(5e9) + i for i in range(5)])
    assert BagSource(tmp_path / "bag").fps == pytest.approx(10.0, rel=1e-6)
