"""RecognizerNode: camera in; label, glimpse markers, overlay and diagnostics out (DESIGN §4).

Threads: the executor runs the subscription callbacks, which only convert the message and enqueue
the frame (drop-oldest, counted); one inference thread pops frames, feeds the Recognizer and
publishes its results, every output stamped with the header of the frame it describes.
"""

from __future__ import annotations

import collections
import threading
from typing import Any, Callable

import numpy as np
import rclpy
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import String
from std_srvs.srv import Trigger
from visualization_msgs.msg import MarkerArray
from diagnostic_msgs.msg import DiagnosticArray

from glimpse_ros.config import NodeConfig, RecognizerConfig
from glimpse_ros.ros.diagnostics import NodeStats, diagnostic_array
from glimpse_ros.ros.frame_queue import DropOldestQueue
from glimpse_ros.ros.image_conversion import (ImageConversionError, compressed_to_rgb,
                                              image_to_rgb, rgb_to_image)
from glimpse_ros.ros.markers import Projection, glimpse_markers
from glimpse_ros.ros.overlay import draw_overlay
from glimpse_ros.ros.parameters import declare_config_parameters
from glimpse_ros.ros.transport import apply_default_transport

try:  # vision_msgs is optional (not on PyPI)
    from vision_msgs.msg import Classification, ObjectHypothesis
except ImportError:  # pragma: no cover - depends on the ROS install
    Classification = ObjectHypothesis = None

# REP-2003 sensor data: best effort, keep only the newest frame.
SENSOR_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                        reliability=ReliabilityPolicy.BEST_EFFORT)
RELIABLE_INPUT_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                                reliability=ReliabilityPolicy.RELIABLE)
WARN_THROTTLE_S = 5.0


def stamp_to_float(stamp) -> float:
    """builtin_interfaces/Time -> seconds."""
    return stamp.sec + stamp.nanosec * 1e-9


def default_recognizer(config: RecognizerConfig) -> Any:
    """Build the runtime Recognizer from its config (import deferred: it pulls in torch)."""
    from glimpse_ros.runtime.recognizer import Recognizer

    return Recognizer(config, checkpoint_path=config.model_path or None)


class RecognizerNode(Node):
    """ROS 2 node wrapping the streaming Recognizer."""

    def __init__(self, recognizer_factory: Callable[[RecognizerConfig], Any] = default_recognizer,
                 node_name: str = "recognizer", **kwargs: Any) -> None:
        """Declare parameters, build the recognizer, create the interfaces and start inference.

        Raises:
            ValueError: an invalid parameter (named in the message) or a model that cannot be
            loaded.
        """
        super().__init__(node_name, **kwargs)
        self.config, self.node_config = declare_config_parameters(self)
        cfg: NodeConfig = self.node_config
        self.recognizer = recognizer_factory(self.config)
        self.stats = NodeStats(stale_timeout_s=cfg.stale_timeout_s)
        self.stats.backend = str(getattr(self.recognizer, "backend_name", "unknown"))
        self._queue: DropOldestQueue[tuple[np.ndarray, Any]] = DropOldestQueue(cfg.queue_size)
        self._recent: collections.OrderedDict[float, tuple[Any, np.ndarray]] = \
            collections.OrderedDict()
        # Frames kept to pair results with their header and pixels: a window's results are for
        # frames pushed at most T frames ago (T = the model's window).
        self._keep_frames = 2 * int(getattr(self.recognizer, "frames", 8)) + 2
        self._camera_info: CameraInfo | None = None
        self._reset_reason: str | None = None
        self._lock = threading.Lock()

        self.label_pub = self.create_publisher(String, "~/label", 10)
        self.markers_pub = self.create_publisher(MarkerArray, "~/glimpses", 10)
        self.overlay_pub = self.create_publisher(Image, "~/overlay", 2)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.class_pub = (self.create_publisher(Classification, "~/classification", 10)
                          if Classification is not None else None)
        # Best effort (REP-2003) is compatible with every publisher. With Fast DDS's default
        # transports large frames between processes are mostly lost; main() applies
        # config/fastdds.xml (large shared-memory segment), the publisher needs it too.
        input_qos = SENSOR_QOS if cfg.input_reliability == "best_effort" else RELIABLE_INPUT_QOS
        events = SubscriptionEventCallbacks(incompatible_qos=self._on_incompatible_qos,
                                            message_lost=self._on_message_lost)
        if cfg.compressed:
            topic = cfg.image_topic.rstrip("/") + "/compressed"
            self.create_subscription(CompressedImage, topic, self._on_compressed, input_qos,
                                     event_callbacks=events)
        else:
            topic = cfg.image_topic
            self.create_subscription(Image, topic, self._on_image, input_qos,
                                     event_callbacks=events)
        if cfg.camera_info_topic:
            self.create_subscription(CameraInfo, cfg.camera_info_topic, self._on_camera_info,
                                     SENSOR_QOS)
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.create_timer(cfg.diagnostics_period_s, self._publish_diagnostics)
        self._running = True
        self._thread = threading.Thread(target=self._inference_loop, name="inference", daemon=True)
        self._thread.start()
        self.get_logger().info(
            f"listening on {self.resolve_topic_name(topic)}; backend {self.stats.backend}; "
            f"labels: {len(getattr(self.recognizer, 'labels', []))}")

    # ----- callbacks: convert and enqueue only -----
    def _enqueue(self, convert: Callable[[Any, int], np.ndarray], msg: Any) -> None:
        try:
            frame = convert(msg, self.node_config.max_frame_pixels)
        except ImageConversionError as err:
            self.stats.record_rejected(err.reason, str(err))
            self.get_logger().warning(f"rejected frame ({err.reason}): {err}",
                                      throttle_duration_sec=WARN_THROTTLE_S)
            return
        except Exception as err:  # a converter bug must not reach the executor
            self.stats.record_rejected("internal", repr(err))
            self.get_logger().error(f"frame conversion failed: {err!r}",
                                    throttle_duration_sec=WARN_THROTTLE_S)
            return
        self.stats.record_input()
        dropped = self._queue.put((frame, msg.header))
        if dropped:
            self.stats.record_dropped(dropped)

    def _on_image(self, msg: Image) -> None:
        self._enqueue(image_to_rgb, msg)

    def _on_compressed(self, msg: CompressedImage) -> None:
        self._enqueue(compressed_to_rgb, msg)

    def _on_incompatible_qos(self, info) -> None:
        self.get_logger().warning(
            f"an image publisher has incompatible QoS (policy id {info.last_policy_kind}); with "
            f"input_reliability={self.node_config.input_reliability} it is not received")

    def _on_message_lost(self, info) -> None:
        self.stats.record_lost(int(info.total_count_change))

    def _on_camera_info(self, msg: CameraInfo) -> None:
        if msg.k[0] > 0 and msg.k[4] > 0:
            self._camera_info = msg

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._lock:
            self._reset_reason = "reset service"
        dropped = self._queue.clear()
        if dropped:  # discarded frames are counted like queue drops: nothing vanishes unreported
            self.stats.record_dropped(dropped)
        response.success = True
        response.message = f"recognizer state reset; {dropped} queued frames discarded"
        return response

    # ----- inference thread -----
    def _inference_loop(self) -> None:
        while self._running:
            item = self._queue.get(timeout=0.1)
            with self._lock:
                reason, self._reset_reason = self._reset_reason, None
            if reason is not None:
                self.recognizer.reset(reason)
                self._recent.clear()
            # The recognizer counts every reset by reason: service ones and its own (time jump,
            # gap, size change).
            self.stats.set_resets(self.recognizer.reset_reasons)
            if item is None:
                continue
            frame, header = item
            stamp = stamp_to_float(header.stamp)
            self._recent[stamp] = (header, frame)
            while len(self._recent) > self._keep_frames:
                self._recent.popitem(last=False)
            try:
                results = self.recognizer.push(frame, stamp)
            except ValueError as err:  # e.g. a frame the recognizer refuses
                self.stats.record_rejected("recognizer", str(err))
                self.get_logger().warning(f"recognizer rejected frame: {err}",
                                          throttle_duration_sec=WARN_THROTTLE_S)
                continue
            except Exception as err:  # keep the node alive; the error shows in diagnostics
                self.stats.record_rejected("inference_error", repr(err))
                self.get_logger().error(f"inference failed: {err!r}",
                                        throttle_duration_sec=WARN_THROTTLE_S)
                continue
            for result in results:
                try:
                    self._publish_result(result)
                except Exception as err:  # e.g. non-finite boxes: skip it, keep the thread
                    self.stats.record_rejected("output_error", repr(err))
                    self.get_logger().error(f"publishing a result failed: {err!r}",
                                            throttle_duration_sec=WARN_THROTTLE_S)

    def _publish_result(self, result: Any) -> None:
        header, frame = self._recent.get(result.stamp, (None, None))
        if header is None:  # result for a frame no longer kept: nothing to stamp it with
            return
        top_k = list(getattr(result, "top_k", []) or [])
        prob = top_k[0][1] if top_k else float("nan")
        text = f"{result.label} ({prob:.2f})"
        self.label_pub.publish(String(data=str(result.label)))
        boxes = np.asarray(result.boxes, dtype=np.float64)  # (G, 4) pixels
        info = self._camera_info
        if info is not None:
            projection = Projection.from_camera_info(
                info, self.node_config.marker_depth_m, frame_id=header.frame_id,
                image_size=(frame.shape[1], frame.shape[0]))
        else:
            projection = Projection.image_plane(frame.shape[1],
                                                self.node_config.image_plane_frame_id)
        self.markers_pub.publish(glimpse_markers(boxes, text, header, projection,
                                                 self.node_config.marker_lifetime_s))
        if self.overlay_pub.get_subscription_count() > 0:
            self.overlay_pub.publish(rgb_to_image(draw_overlay(frame, boxes, text, top_k), header))
            self.stats.record_overlay()
        if self.class_pub is not None:
            msg = Classification(header=header)
            msg.results = [ObjectHypothesis(class_id=str(n), score=float(p)) for n, p in top_k]
            self.class_pub.publish(msg)
        latency = stamp_to_float(self.get_clock().now().to_msg()) - result.stamp
        self.stats.record_processed(latency)

    def _publish_diagnostics(self) -> None:
        status = self.stats.status(hardware_id=self.get_fully_qualified_name())
        self.diag_pub.publish(diagnostic_array(status, self.get_clock().now().to_msg()))

    def destroy_node(self) -> None:
        """Stop the inference thread, then destroy the node."""
        self._running = False
        if hasattr(self, "_thread"):  # absent when start-up failed
            self._queue.close()
            self._thread.join(timeout=5.0)
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Console script ``recognizer`` / ``python -m glimpse_ros.recognizer --ros-args ...``."""
    import logging

    from rclpy.executors import ExternalShutdownException

    # The runtime logs through Python logging (backend choice, state resets): show its INFO lines.
    runtime_log = logging.getLogger("glimpse_ros")
    runtime_log.setLevel(logging.INFO)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("[%(levelname)s] [%(name)s]: %(message)s"))
    runtime_log.addHandler(handler)
    profile = apply_default_transport()  # before rclpy.init: large frames over shared memory
    rclpy.init(args=args)
    if profile is not None:
        rclpy.logging.get_logger("recognizer").info(f"Fast DDS profile: {profile}")
    try:
        node = RecognizerNode()
    except (ValueError, OSError, RuntimeError) as err:  # bad parameter, model or backend
        rclpy.logging.get_logger("recognizer").fatal(f"start-up failed: {err}")
        rclpy.try_shutdown()
        return 2
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


__all__ = ["RecognizerNode", "SENSOR_QOS", "main", "stamp_to_float"]
