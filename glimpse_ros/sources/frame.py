"""One frame of a source, with what the source knows about it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Frame:
    """A decoded frame.

    Attributes:
        rgb: ``(H, W, 3)`` uint8 RGB image.
        index: position in the source (0, 1, ...).
        stamp: capture time in seconds from the source (a bag's header stamp), None when the
            source has no clock (video files, image folders).
        frame_id: the camera frame of a bag message, None otherwise.
        camera_info: the CameraInfo recorded with the frame (a rosbags message with the fields of
            sensor_msgs/CameraInfo), None when none was recorded.
    """

    rgb: np.ndarray
    index: int
    stamp: float | None = None
    frame_id: str | None = None
    camera_info: Any = None
