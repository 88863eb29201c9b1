"""Input topic names of the recognizer: the image, and its CameraInfo as image_transport pairs it.

The default image topic is the relative ``image`` (image_pipeline's convention), resolved in the
node's namespace: ``-r __ns:=/robot1`` gives ``/robot1/image``. image_transport's CameraSubscriber
listens to ``<ns>/camera_info`` next to the image topic ``<ns>/<image>``, *after* remapping: with
``-r image:=/cam1/image_raw`` the image comes from ``/cam1/image_raw`` and the CameraInfo from
``/cam1/camera_info``. A compressed stream is ``<image>/compressed`` of the (remapped) base topic,
as with image_transport's plugins.
"""

from __future__ import annotations

from dataclasses import dataclass

from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

# REP-2003 sensor data: best effort, keep only the newest frame.
SENSOR_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                        reliability=ReliabilityPolicy.BEST_EFFORT)
RELIABLE_INPUT_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                                reliability=ReliabilityPolicy.RELIABLE)


@dataclass(frozen=True)
class InputTopics:
    """Fully resolved (expanded and remapped) topic names."""

    image: str
    camera_info: str


def camera_info_sibling(image_topic: str) -> str:
    """``/a/b/image_raw`` -> ``/a/b/camera_info`` (resolved names)."""
    return image_topic.rstrip("/").rsplit("/", 1)[0] + "/camera_info"


def input_topics(node: Node, image_topic: str, compressed: bool,
                 camera_info_topic: str = "") -> InputTopics:
    """Resolve the node's input topics.

    Args:
        node: the node (its namespace and remapping rules apply).
        image_topic: base image topic as configured (relative, private or absolute).
        compressed: subscribe to ``<base>/compressed``.
        camera_info_topic: explicit CameraInfo topic; "" = sibling of the remapped base topic.
    """
    base = node.resolve_topic_name(image_topic)
    image = base + "/compressed" if compressed else base
    info = (node.resolve_topic_name(camera_info_topic) if camera_info_topic
            else camera_info_sibling(base))
    return InputTopics(image, info)


__all__ = ["InputTopics", "RELIABLE_INPUT_QOS", "SENSOR_QOS", "camera_info_sibling",
           "input_topics"]
