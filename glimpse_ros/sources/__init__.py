"""Frame sources without ROS: video files, image folders and ROS 2 bags (sqlite3 or mcap).

Used by the replay node (``glimpse_ros.ros.replay``) and by offline annotation
(``glimpse_ros.tools.annotate``); nothing here imports rclpy.
"""

from __future__ import annotations

from pathlib import Path

from glimpse_ros.sources.bag import BagSource, is_bag
from glimpse_ros.sources.frame import Frame
from glimpse_ros.sources.image_decoding import DEFAULT_MAX_PIXELS
from glimpse_ros.sources.video import FrameSource

__all__ = ["BagSource", "DEFAULT_MAX_PIXELS", "Frame", "FrameSource", "is_bag", "open_source"]


def open_source(path: str | Path, size: tuple[int, int] | None = None, topic: str = "",
                camera_info_topic: str = "",
                max_pixels: int = DEFAULT_MAX_PIXELS) -> FrameSource | BagSource:
    """Open a bag (folder with ``metadata.yaml``, or a file inside one), a video or a folder.

    Args:
        path: the input.
        size: (width, height) to resize every frame to; None keeps the source's size.
        topic: bags only: the image topic ("" = the only / the most frequent one).
        camera_info_topic: bags only: the CameraInfo topic ("" = the image topic's sibling).
        max_pixels: the node's ``max_frame_pixels`` bound: larger frames are skipped and counted
            (bag messages, folder images), a video of larger frames is refused.

    Raises:
        ValueError: the input does not exist or cannot be read (the message names it).
    """
    if is_bag(path):
        return BagSource(path, size=size, topic=topic, camera_info_topic=camera_info_topic,
                         max_pixels=max_pixels)
    if topic or camera_info_topic:
        raise ValueError(f"{path}: --topic / --camera-info-topic apply to bags only")
    return FrameSource(path, size, max_pixels=max_pixels)
