"""Input side of the recognizer node: subscription callbacks that check, convert and enqueue.

The callbacks run on the executor and stay cheap: a raw Image is converted there (a bounded copy
of at most ``max_frame_pixels``), a CompressedImage only has its header checked (declared size,
JPEG scan count) and its bytes are queued; :meth:`FrameInput.decode` decodes them on the
inference thread. Every message is counted, every refusal counted by reason and logged
(throttled), never raised; frames beyond ``queue_size`` push out the oldest (counted as dropped).
Messages a publisher sent that never reached the callback are counted from the publication
sequence numbers (``sequence_gaps.py``).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from sensor_msgs.msg import CameraInfo

from glimpse_ros.config import NodeConfig
from glimpse_ros.ros.diagnostics import NodeStats
from glimpse_ros.ros.frame_queue import DropOldestQueue
from glimpse_ros.sources.image_decoding import (CompressedFrame, ImageConversionError,
                                                decode_compressed, image_to_rgb,
                                                inspect_compressed)
from glimpse_ros.ros.markers import check_camera_info
from glimpse_ros.ros.sequence_gaps import SequenceGaps

WARN_THROTTLE_S = 5.0
# A queued item: an RGB frame (H, W, 3) uint8 or compressed bytes, with the message header.
Item = tuple[np.ndarray | CompressedFrame, Any]


class FrameInput:
    """Frame queue, CameraInfo and the callbacks that feed them."""

    def __init__(self, stats: NodeStats, logger: Any, config: Callable[[], NodeConfig],
                 image_topic: str) -> None:
        """Create an empty queue of ``config().queue_size`` frames.

        Args:
            stats: the node's counters.
            logger: the node's logger (rclpy ``RcutilsLogger``).
            config: the current node settings (live ones may change between calls).
            image_topic: resolved image topic, named in the incompatible-QoS warning.
        """
        self.stats, self._log, self._config, self._topic = stats, logger, config, image_topic
        self.queue: DropOldestQueue[Item] = DropOldestQueue(config().queue_size)
        self.gaps = SequenceGaps()
        self.camera_info: CameraInfo | None = None  # the last accepted one

    def reject(self, err: Exception) -> None:
        """Count and (throttled) log a rejected message."""
        if isinstance(err, ImageConversionError):
            self.stats.record_rejected(err.reason, str(err))
            self._log.warning(f"rejected frame ({err.reason}): {err}",
                              throttle_duration_sec=WARN_THROTTLE_S)
        else:  # a converter bug must not reach the executor or the inference thread
            self.stats.record_rejected("internal", repr(err))
            self._log.error(f"frame conversion failed: {err!r}",
                            throttle_duration_sec=WARN_THROTTLE_S)

    def _enqueue(self, convert: Callable[[Any, int], Any], msg: Any, info: Any) -> None:
        self.stats.record_message()
        skipped = self.gaps.update(info)
        if skipped:
            self.stats.record_skipped(skipped)
        try:
            item = convert(msg, self._config().max_frame_pixels)
        except Exception as err:  # noqa: BLE001 - counted by reason, never raised
            self.reject(err)
            return
        self.stats.record_input()
        dropped = self.queue.put((item, msg.header))
        if dropped:
            self.stats.record_dropped(dropped)

    def on_image(self, msg: Any, info: Any = None) -> None:
        """sensor_msgs/Image callback (``info``: rclpy's MessageInfo, when subscribed with it)."""
        self._enqueue(image_to_rgb, msg, info)

    def on_compressed(self, msg: Any, info: Any = None) -> None:
        """sensor_msgs/CompressedImage callback: header checks only, decoded by :meth:`decode`."""
        self._enqueue(inspect_compressed, msg, info)

    def decode(self, frame: np.ndarray | CompressedFrame) -> np.ndarray | None:
        """The RGB frame of a queued item (compressed ones decoded here); None when refused."""
        if not isinstance(frame, CompressedFrame):
            return frame
        try:
            return decode_compressed(frame)
        except Exception as err:  # noqa: BLE001 - counted by reason, never raised
            self.reject(err)
            return None

    def on_camera_info(self, msg: CameraInfo) -> None:
        """Keep a CameraInfo whose intrinsics can place markers; count refused ones."""
        try:
            check_camera_info(msg)
        except ValueError as err:
            self.stats.record_camera_info_rejected(f"CameraInfo refused: {err}")
            self._log.warning(f"CameraInfo refused: {err}", throttle_duration_sec=WARN_THROTTLE_S)
            return
        self.camera_info = msg

    def on_incompatible_qos(self, info: Any) -> None:
        """Count a publisher the input subscription cannot match (QoS event)."""
        self.stats.record_incompatible_qos(max(1, int(info.total_count_change)))
        self._log.warning(
            f"an image publisher has incompatible QoS (policy id {info.last_policy_kind}); with "
            f"input_reliability={self._config().input_reliability} (and "
            f"qos_overrides.{self._topic}.subscription.*) it is not received")

    def on_message_lost(self, info: Any) -> None:
        """Count samples the middleware knows it lost (QoS event)."""
        self.stats.record_lost(int(info.total_count_change))

    def discard(self) -> int:
        """Empty the queue; the discarded frames are counted as dropped. Returns their number."""
        dropped = self.queue.clear()
        if dropped:
            self.stats.record_dropped(dropped)
        return dropped


__all__ = ["FrameInput", "Item"]
