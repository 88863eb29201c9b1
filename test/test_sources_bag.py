"""Frame sources without ROS: ROS 2 bags (sqlite3 and mcap) written with rosbags, dispatch."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rosbags")
from bag_fixtures import K, write_bag  # noqa: E402

from glimpse_ros.sources import BagSource, FrameSource, is_bag, open_source  # noqa: E402
from glimpse_ros.sources.bag import camera_info_sibling  # noqa: E402

STORAGES = ["sqlite3", "mcap"]


@pytest.mark.parametrize("storage", STORAGES)
def test_bag_image_topic_with_original_stamps_and_camera_info(tmp_path, storage: str) -> None:
    """Raw Image topic: pixels, header stamps, frame id and the recorded CameraInfo."""
    content = write_bag(tmp_path / "bag", storage)
    assert is_bag(tmp_path / "bag")
    source = open_source(tmp_path / "bag")
    assert isinstance(source, BagSource)
    # both image topics have 5 messages: the raw one is preferred to its compressed copy
    assert (source.topic, source.count) == ("/cam/image_raw", 5)
    assert source.camera_info_topic == "/cam/camera_info"
    assert source.fps == pytest.approx(10.0, rel=0.05)  # 5 frames recorded over 0.4 s
    frames = list(source.items())
    assert [f.index for f in frames] == list(range(5))
    for f, rgb, stamp in zip(frames, content.raw_rgb, content.raw_stamps):
        np.testing.assert_array_equal(f.rgb, rgb)  # bgr8 in the bag, RGB out
        assert f.stamp == pytest.approx(stamp, abs=1e-9) and f.frame_id == "cam_optical"
        assert list(f.camera_info.k) == K and f.camera_info.width == 32
    assert source.rejected == 0


@pytest.mark.parametrize("storage", STORAGES)
def test_bag_compressed_topic_and_resize(tmp_path, storage: str) -> None:
    """A CompressedImage (PNG) topic chosen by name, frames resized on request."""
    content = write_bag(tmp_path / "bag", storage)
    source = BagSource(tmp_path / "bag", topic="/cam/image_raw/compressed")
    assert source.camera_info_topic == "/cam/camera_info"  # sibling of the uncompressed name
    frames = list(source.items())
    assert [f.stamp for f in frames] == pytest.approx(content.compressed_stamps, abs=1e-9)
    for f, rgb in zip(frames, content.compressed_rgb):
        np.testing.assert_array_equal(f.rgb, rgb)  # PNG is lossless
    small = BagSource(tmp_path / "bag", size=(16, 12))
    assert next(small.frames()).shape == (12, 16, 3)


def test_bag_storage_file_path_and_errors(tmp_path) -> None:
    """A storage file inside the bag opens the bag; unknown topics are named in the error."""
    write_bag(tmp_path / "bag", "mcap", with_compressed=False)
    (mcap,) = (tmp_path / "bag").glob("*.mcap")
    assert is_bag(mcap) and BagSource(mcap).topic == "/cam/image_raw"
    with pytest.raises(ValueError, match="image topics: /cam/image_raw"):
        BagSource(tmp_path / "bag", topic="/nope")
    with pytest.raises(ValueError, match="CameraInfo topics: /cam/camera_info"):
        BagSource(tmp_path / "bag", camera_info_topic="/nope/camera_info")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "metadata.yaml").write_text("not: a bag\n")
    with pytest.raises(ValueError, match="not a readable ROS 2 bag"):
        BagSource(tmp_path / "broken")
    with pytest.raises(ValueError, match="bags only"):
        open_source(tmp_path / "video.avi", topic="/cam/image_raw")


def test_camera_info_sibling_follows_image_transport() -> None:
    """image_raw and its compressed transport pair with the namespace's camera_info."""
    assert camera_info_sibling("/cam1/image_raw") == "/cam1/camera_info"
    assert camera_info_sibling("/cam1/image_raw/compressed") == "/cam1/camera_info"
    assert camera_info_sibling("/image") == "/camera_info"
    assert camera_info_sibling("image") == "/camera_info"


def test_open_source_dispatches_folders_to_frame_source(tmp_path) -> None:
    """A folder without metadata.yaml is an image folder, not a bag."""
    import cv2

    (tmp_path / "imgs").mkdir()
    cv2.imwrite(str(tmp_path / "imgs" / "0.png"), np.zeros((4, 6, 3), np.uint8))
    source = open_source(tmp_path / "imgs")
    assert isinstance(source, FrameSource) and not is_bag(tmp_path / "imgs")
    (frame,) = list(source.items())
    assert frame.stamp is None and frame.rgb.shape == (4, 6, 3)
