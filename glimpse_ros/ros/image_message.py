"""RGB arrays -> sensor_msgs/Image (the inverse of :mod:`glimpse_ros.sources.image_decoding`)."""

from __future__ import annotations

import cv2
import numpy as np


def rgb_to_image(rgb: np.ndarray, header=None, encoding: str = "rgb8"):
    """Build a sensor_msgs/Image from an (H, W, 3) uint8 RGB array (encoding rgb8 or bgr8)."""
    from sensor_msgs.msg import Image

    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    if encoding == "bgr8":
        rgb = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    elif encoding != "rgb8":
        raise ValueError(f"encoding must be rgb8 or bgr8, got {encoding!r}")
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(rgb.shape[0]), int(rgb.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(rgb.shape[1] * 3)
    msg.data = np.ascontiguousarray(rgb).tobytes()
    return msg


__all__ = ["rgb_to_image"]
