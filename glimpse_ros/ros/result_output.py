"""The recognizer node's outputs: its lifecycle publishers and how one result becomes messages.

Per result (every message stamped with the header of the frame it describes):

- ``~/label`` (std_msgs/String), the smoothed top-1 label;
- ``~/glimpses`` (MarkerArray) in the image-plane frame (the shipped RViz view needs no
  transform) and, with a CameraInfo and a subscriber, ``~/glimpses_camera`` in the camera's
  frame at ``marker_depth_m``;
- ``~/overlay`` (Image), drawn only while someone subscribes;
- ``~/classification`` (vision_msgs/Classification) when vision_msgs is installed.

Nothing non-finite is ever published: a result with a NaN/Inf box or score raises ValueError
before the first message goes out, so its outputs are skipped as a whole.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.lifecycle import LifecycleNode
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String
from visualization_msgs.msg import MarkerArray

from glimpse_ros.config import NodeConfig
from glimpse_ros.ros.image_message import rgb_to_image
from glimpse_ros.ros.markers import Projection, glimpse_markers
from glimpse_ros.ros.overlay import draw_overlay

try:  # vision_msgs is optional (not on PyPI)
    from vision_msgs.msg import Classification, ObjectHypothesis
except ImportError:  # pragma: no cover - depends on the ROS install
    Classification = ObjectHypothesis = None

PUBLISHERS = ("label_pub", "markers_pub", "camera_markers_pub", "overlay_pub", "diag_pub",
              "class_pub")


def _qos_options() -> QoSOverridingOptions:
    """``qos_overrides.<topic>.publisher.{history,depth,reliability}``."""
    return QoSOverridingOptions.with_default_policies()


class ResultOutputs:
    """Lifecycle publishers of a RecognizerNode (created on configure, destroyed on cleanup)."""

    def __init__(self, node: LifecycleNode) -> None:
        """Create the publishers on ``node`` (they publish only while it is active)."""
        self._node = node
        pub = node.create_lifecycle_publisher
        self.label_pub = pub(String, "~/label", 10, qos_overriding_options=_qos_options())
        self.markers_pub = pub(MarkerArray, "~/glimpses", 10,
                               qos_overriding_options=_qos_options())
        self.camera_markers_pub = pub(MarkerArray, "~/glimpses_camera", 10,
                                      qos_overriding_options=_qos_options())
        self.overlay_pub = pub(Image, "~/overlay", 2, qos_overriding_options=_qos_options())
        self.diag_pub = pub(DiagnosticArray, "/diagnostics", 10)
        self.class_pub = (pub(Classification, "~/classification", 10,
                              qos_overriding_options=_qos_options())
                          if Classification is not None else None)

    def publish(self, result: Any, header: Any, frame: np.ndarray,
                camera_info: CameraInfo | None, cfg: NodeConfig) -> bool:
        """Publish the messages of one recognizer result.

        Args:
            result: a ``FrameResult`` (label, top_k, boxes ``(G, 4)`` in source pixels, stamp).
            header: std_msgs/Header of the frame the result describes.
            frame: that frame, ``(H, W, 3)`` uint8 RGB (overlay, image size).
            camera_info: the last accepted CameraInfo, or None.
            cfg: current node settings (frames, marker depth and lifetime).

        Returns:
            Whether an overlay image was published.

        Raises:
            ValueError: a non-finite box or score (nothing was published).
        """
        top_k = list(getattr(result, "top_k", []) or [])
        boxes = np.asarray(result.boxes, dtype=np.float64)  # (G, 4) pixels
        scores = np.array([p for _, p in top_k], dtype=np.float64)
        if not (np.isfinite(boxes).all() and np.isfinite(scores).all()):
            raise ValueError(f"non-finite result at stamp {result.stamp:.3f}: boxes "
                             f"{boxes.tolist()}, scores {scores.tolist()}")
        prob = top_k[0][1] if top_k else 0.0
        text = f"{result.label} ({prob:.2f})"
        # All markers are built before anything is published: glimpse_markers raises on a
        # non-finite point (e.g. from the projection).
        plane = Projection.image_plane(frame.shape[1], cfg.image_plane_frame_id)
        markers = glimpse_markers(boxes, text, header, plane, cfg.marker_lifetime_s)
        camera_markers = None
        if camera_info is not None and self.camera_markers_pub.get_subscription_count() > 0:
            projection = Projection.from_camera_info(
                camera_info, cfg.marker_depth_m, frame_id=header.frame_id,
                image_size=(frame.shape[1], frame.shape[0]))
            camera_markers = glimpse_markers(boxes, text, header, projection,
                                             cfg.marker_lifetime_s)
        self.label_pub.publish(String(data=str(result.label)))
        self.markers_pub.publish(markers)
        if camera_markers is not None:
            self.camera_markers_pub.publish(camera_markers)
        overlay = self.overlay_pub.get_subscription_count() > 0
        if overlay:
            self.overlay_pub.publish(rgb_to_image(draw_overlay(frame, boxes, text, top_k), header))
        if self.class_pub is not None:
            msg = Classification(header=header)
            msg.results = [ObjectHypothesis(class_id=str(n), score=float(p)) for n, p in top_k]
            self.class_pub.publish(msg)
        return overlay

    def destroy(self) -> None:
        """Destroy every publisher (cleanup/shutdown)."""
        for name in PUBLISHERS:
            publisher = getattr(self, name)
            if publisher is not None:
                self._node.destroy_lifecycle_publisher(publisher)
                setattr(self, name, None)


__all__ = ["ResultOutputs"]
