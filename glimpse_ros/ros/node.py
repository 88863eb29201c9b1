"""RecognizerNode: camera in; label, glimpse markers, overlay and diagnostics out (DESIGN §4).

Threads: the executor runs the subscription callbacks, which only convert the message and enqueue
the frame (drop-oldest, counted); one inference thread pops frames, feeds the Recognizer and
publishes its results, every output stamped with the header of the frame it describes.

A raw Image is converted in its callback (a bounded copy of at most max_frame_pixels). A
CompressedImage callback only checks the header (declared size, JPEG scan count: microseconds)
and enqueues the bytes; decoding runs on the inference thread, so a costly image never blocks
the executor: the ~/reset service, CameraInfo and /diagnostics keep answering.
"""

from __future__ import annotations

import collections
import sys
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
from glimpse_ros.ros.image_conversion import (CompressedFrame, ImageConversionError,
                                              decode_compressed, image_to_rgb,
                                              inspect_compressed, rgb_to_image)
from glimpse_ros.ros.markers import Projection, check_camera_info, glimpse_markers
from glimpse_ros.ros.overlay import draw_overlay
from glimpse_ros.ros.parameters import ParameterError, declare_config_parameters
from glimpse_ros.ros.sequence_gaps import SequenceGaps
from glimpse_ros.ros.transport import apply_default_transport
from glimpse_ros.runtime.stream_policy import ResetKind

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
INTERRUPTED = "[INFO] [recognizer]: interrupted during start-up"
# Recognizer counters shown in the diagnostics (stream policy: dropped jitter, size changes).
RECOGNIZER_COUNTERS = ("jitter_dropped", "size_changes")


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
        image_topic = self._check_topic("image_topic", cfg.image_topic.rstrip("/") + "/compressed"
                                        if cfg.compressed else cfg.image_topic)
        if cfg.camera_info_topic:
            self._check_topic("camera_info_topic", cfg.camera_info_topic)
        self.recognizer = recognizer_factory(self.config)
        self.stats = NodeStats(stale_timeout_s=cfg.stale_timeout_s,
                               no_output_timeout_s=cfg.no_output_timeout_s)
        self.stats.backend = str(getattr(self.recognizer, "backend_name", "unknown"))
        self._queue: DropOldestQueue[tuple[np.ndarray | CompressedFrame, Any]] = \
            DropOldestQueue(cfg.queue_size)
        self._gaps = SequenceGaps()
        self._recent: collections.OrderedDict[float, tuple[Any, np.ndarray]] = \
            collections.OrderedDict()
        # Frames kept to pair results with their header and pixels: a window's results are for
        # frames pushed at most T frames ago (T = the model's window).
        self._keep_frames = 2 * int(getattr(self.recognizer, "frames", 8)) + 2
        self._camera_info: CameraInfo | None = None
        self._reset_requested = False
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
        # Two-argument callbacks: rclpy passes the MessageInfo (publisher sequence numbers).
        topic = image_topic
        if cfg.compressed:
            self.create_subscription(CompressedImage, topic,
                                     lambda msg, info: self._on_compressed(msg, info),
                                     input_qos, event_callbacks=events)
        else:
            self.create_subscription(Image, topic, lambda msg, info: self._on_image(msg, info),
                                     input_qos, event_callbacks=events)
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

    def _check_topic(self, parameter: str, topic: str) -> str:
        """Return ``topic`` when it is a valid topic name, else raise naming ``parameter``."""
        try:
            self.resolve_topic_name(topic)
        except RuntimeError as err:  # rclpy's RCLError
            reason = str(err).split(", at ")[0].replace("failed to resolve name: ", "")
            raise ParameterError(f"invalid parameter: {parameter}: {topic!r} is not a valid "
                                 f"topic name ({reason})") from None
        return topic

    # ----- callbacks: check, convert (cheap) and enqueue only -----
    def _reject(self, err: Exception) -> None:
        """Count and (throttled) log a rejected message."""
        if isinstance(err, ImageConversionError):
            self.stats.record_rejected(err.reason, str(err))
            self.get_logger().warning(f"rejected frame ({err.reason}): {err}",
                                      throttle_duration_sec=WARN_THROTTLE_S)
        else:  # a converter bug must not reach the executor or the inference thread
            self.stats.record_rejected("internal", repr(err))
            self.get_logger().error(f"frame conversion failed: {err!r}",
                                    throttle_duration_sec=WARN_THROTTLE_S)

    def _enqueue(self, convert: Callable[[Any, int], Any], msg: Any, info: Any = None) -> None:
        self.stats.record_message()
        skipped = self._gaps.update(info)
        if skipped:
            self.stats.record_skipped(skipped)
        try:
            item = convert(msg, self.node_config.max_frame_pixels)
        except Exception as err:  # noqa: BLE001 - counted by reason, never raised
            self._reject(err)
            return
        self.stats.record_input()
        dropped = self._queue.put((item, msg.header))
        if dropped:
            self.stats.record_dropped(dropped)

    def _on_image(self, msg: Image, info: Any = None) -> None:
        self._enqueue(image_to_rgb, msg, info)

    def _on_compressed(self, msg: CompressedImage, info: Any = None) -> None:
        # Header checks only; decode_compressed runs on the inference thread.
        self._enqueue(inspect_compressed, msg, info)

    def _on_incompatible_qos(self, info) -> None:
        self.stats.record_incompatible_qos(max(1, int(info.total_count_change)))
        self.get_logger().warning(
            f"an image publisher has incompatible QoS (policy id {info.last_policy_kind}); with "
            f"input_reliability={self.node_config.input_reliability} it is not received")

    def _on_message_lost(self, info) -> None:
        self.stats.record_lost(int(info.total_count_change))

    def _on_camera_info(self, msg: CameraInfo) -> None:
        try:
            check_camera_info(msg)
        except ValueError as err:
            self.stats.record_camera_info_rejected(f"CameraInfo refused: {err}")
            self.get_logger().warning(f"CameraInfo refused: {err}",
                                      throttle_duration_sec=WARN_THROTTLE_S)
            return
        self._camera_info = msg

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._lock:
            self._reset_requested = True
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
                requested, self._reset_requested = self._reset_requested, False
            if requested:
                self.recognizer.reset(ResetKind.REQUESTED, "reset service")
                self._recent.clear()
            # The recognizer counts every reset by kind: requested ones and its own (time jump,
            # gap), and the frames its stamp and size policy dropped or resized.
            counters = getattr(self.recognizer, "counters", {})
            self.stats.set_resets(self.recognizer.reset_reasons,
                                  getattr(self.recognizer, "last_reset_reason", ""),
                                  {k: counters.get(k, 0) for k in RECOGNIZER_COUNTERS})
            if item is None:
                continue
            frame, header = item
            if isinstance(frame, CompressedFrame):
                try:
                    frame = decode_compressed(frame)
                except Exception as err:  # noqa: BLE001 - counted by reason, never raised
                    self._reject(err)
                    continue
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
        boxes = np.asarray(result.boxes, dtype=np.float64)  # (G, 4) pixels
        scores = np.array([p for _, p in top_k], dtype=np.float64)
        if not (np.isfinite(boxes).all() and np.isfinite(scores).all()):
            # Never publish a non-finite number: the whole result is skipped and counted.
            raise ValueError(f"non-finite result at stamp {result.stamp:.3f}: boxes "
                             f"{boxes.tolist()}, scores {scores.tolist()}")
        prob = top_k[0][1] if top_k else 0.0
        text = f"{result.label} ({prob:.2f})"
        info = self._camera_info
        if info is not None:
            projection = Projection.from_camera_info(
                info, self.node_config.marker_depth_m, frame_id=header.frame_id,
                image_size=(frame.shape[1], frame.shape[0]))
        else:
            projection = Projection.image_plane(frame.shape[1],
                                                self.node_config.image_plane_frame_id)
        # Built before anything is published: it raises on a non-finite point.
        markers = glimpse_markers(boxes, text, header, projection,
                                  self.node_config.marker_lifetime_s)
        self.label_pub.publish(String(data=str(result.label)))
        self.markers_pub.publish(markers)
        if self.overlay_pub.get_subscription_count() > 0:
            self.overlay_pub.publish(rgb_to_image(draw_overlay(frame, boxes, text, top_k), header))
            self.stats.record_overlay()
        if self.class_pub is not None:
            msg = Classification(header=header)
            msg.results = [ObjectHypothesis(class_id=str(n), score=float(p)) for n, p in top_k]
            self.class_pub.publish(msg)
        latency = stamp_to_float(self.get_clock().now().to_msg()) - result.stamp
        self.stats.record_processed(latency, result.stamp)

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
    log = rclpy.logging.get_logger("recognizer")
    try:
        rclpy.init(args=args)
    except RuntimeError as err:  # rcl cannot parse the arguments, e.g. a bad --params-file
        log.fatal(f"start-up failed: invalid arguments: {str(err).split(', at ')[0]}")
        return 2
    if profile is not None:
        log.info(f"Fast DDS profile: {profile}")
    try:
        node = RecognizerNode()
    except KeyboardInterrupt:  # SIGINT while the model loads: leave quietly
        print(INTERRUPTED, file=sys.stderr)  # rcl logging ends with the context
        rclpy.try_shutdown()
        return 0
    except (ValueError, OSError, RuntimeError) as err:  # bad parameter, model or backend
        if not rclpy.ok():  # SIGINT shut the context down while the node was being built
            print(INTERRUPTED, file=sys.stderr)
            return 0
        log.fatal(f"start-up failed: {err}")
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
