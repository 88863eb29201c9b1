"""Replay: video file / image folder published as image + camera_info with real-time pacing."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from glimpse_ros.sources.image_decoding import image_to_rgb  # noqa: E402
from glimpse_ros.ros.replay import FrameSource, ReplayNode  # noqa: E402


def write_folder(path, n: int = 6):
    """N grey PNG frames of increasing brightness."""
    path.mkdir()
    for i in range(n):
        cv2.imwrite(str(path / f"{i:03d}.png"), np.full((24, 32, 3), 10 * i, np.uint8))
    return path


def run(context, source: FrameSource, **kwargs) -> tuple[list[Image], list[CameraInfo], float]:
    """Run a ReplayNode until it finishes, collecting what a subscriber receives."""
    sub = rclpy.create_node("sink", context=context)
    images: list[Image] = []
    infos: list[CameraInfo] = []
    sub.create_subscription(Image, "/image", images.append, 100)
    sub.create_subscription(CameraInfo, "/camera_info", infos.append, 100)
    node = ReplayNode(source, context=context, wait_for_subscriber_s=5.0, **kwargs)
    ex = SingleThreadedExecutor(context=context)
    ex.add_node(sub)
    ex.add_node(node)
    start = time.monotonic()
    while not node.finished.is_set() and time.monotonic() - start < 20:
        ex.spin_once(timeout_sec=0.05)
    elapsed = time.monotonic() - start
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        ex.spin_once(timeout_sec=0.05)
    node.destroy_node()
    sub.destroy_node()
    return images, infos, elapsed


def test_folder_replay_paced_with_camera_info(context, tmp_path) -> None:
    """Every image is published once, in order, at the requested rate, with CameraInfo."""
    source = FrameSource(write_folder(tmp_path / "f"))
    images, infos, elapsed = run(context, source, fps=20.0, frame_id="cam")
    assert len(images) == 6 and len(infos) == 6
    values = [int(image_to_rgb(m)[0, 0, 0]) for m in images]
    assert values == [0, 10, 20, 30, 40, 50]
    stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in images]
    # real-time pacing at 20 fps (loose bounds: the machine may be busy)
    assert np.mean(np.diff(stamps)) == pytest.approx(0.05, abs=0.015)
    assert np.diff(stamps).min() > 0.02 and np.diff(stamps).max() < 0.2
    assert 0.2 <= elapsed < 2.0
    info = infos[0]
    assert (info.width, info.height, info.header.frame_id) == (32, 24, "cam")
    assert info.k[2] == pytest.approx(15.5) and info.k[0] > 0
    assert images[0].header.stamp == info.header.stamp


def test_video_replay_resize_loop_and_duration(context, tmp_path) -> None:
    """A looping video runs until --duration, frames resized to the requested size."""
    path = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (32, 24))
    for i in range(5):
        writer.write(np.full((24, 32, 3), 40 * i, np.uint8))
    writer.release()
    source = FrameSource(path, size=(16, 12))
    assert source.fps == pytest.approx(25.0)
    images, _, elapsed = run(context, source, loop=True, duration_s=0.6, encoding="rgb8")
    assert 10 <= len(images) <= 17  # ~15 frames in 0.6 s at the file's 25 fps, looping
    assert (images[0].width, images[0].height, images[0].encoding) == (16, 12, "rgb8")


def test_bad_sources(tmp_path) -> None:
    """Missing path, empty folder and unreadable video raise ValueError."""
    with pytest.raises(ValueError, match="no such"):
        FrameSource(tmp_path / "missing.avi")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        FrameSource(tmp_path / "empty")
    (tmp_path / "junk.avi").write_bytes(b"junk")
    with pytest.raises(ValueError, match="cannot read"):
        FrameSource(tmp_path / "junk.avi")


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_bag_replay_keeps_recorded_stamps_and_camera_info(context, tmp_path, storage) -> None:
    """A bag is published with its recorded stamps, frame id and CameraInfo."""
    pytest.importorskip("rosbags")
    from bag_fixtures import K, write_bag

    from glimpse_ros.sources import BagSource

    content = write_bag(tmp_path / "bag", storage)
    images, infos, _ = run(context, BagSource(tmp_path / "bag"), fps=50.0)
    assert len(images) == len(infos) == 5
    stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in images]
    assert stamps == pytest.approx(content.raw_stamps, abs=1e-6)
    for msg, rgb in zip(images, content.raw_rgb):
        assert msg.header.frame_id == "cam_optical"
        np.testing.assert_array_equal(image_to_rgb(msg), rgb)
    assert list(infos[0].k) == K and infos[0].header.stamp == images[0].header.stamp
    # --restamp: the clock's time instead (the bag's stamps are at 100 s after the epoch)
    images, _, _ = run(context, BagSource(tmp_path / "bag"), fps=50.0, restamp=True)
    assert images and all(m.header.stamp.sec > 1_000_000 for m in images)
