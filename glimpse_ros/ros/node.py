"""RecognizerNode: camera in; label, glimpse markers, overlay and diagnostics out (DESIGN §4).

A managed (lifecycle) node. Unmanaged (``managed: false``, the default) it configures and
activates itself at start-up; managed, it waits for the lifecycle_msgs services:

- configure: build the recognizer (load the model, build the engine), create the publishers and
  the ``~/reset`` service;
- activate: subscribe to the image and its CameraInfo, start inference and diagnostics;
- deactivate: unsubscribe, stop inference (queued frames are discarded and counted);
- cleanup: destroy publishers and service, free the recognizer and its engine.

Threads: the executor runs the subscription callbacks, which only convert the message and enqueue
the frame (drop-oldest, counted); one inference thread pops frames, feeds the Recognizer and
publishes its results, every output stamped with the header of the frame it describes.
"""

from __future__ import annotations

import collections
import copy
import threading
from typing import Any, Callable

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import String
from std_srvs.srv import Trigger
from visualization_msgs.msg import MarkerArray

from glimpse_ros.config import NodeConfig, RecognizerConfig
from glimpse_ros.ros.camera_topics import RELIABLE_INPUT_QOS, SENSOR_QOS, input_topics
from glimpse_ros.ros.diagnostics import NodeStats, diagnostic_array
from glimpse_ros.ros.frame_queue import DropOldestQueue
from glimpse_ros.ros.frequency_status import frequency_check, merge_check
from glimpse_ros.ros.image_conversion import (ImageConversionError, compressed_to_rgb,
                                              image_to_rgb, rgb_to_image)
from glimpse_ros.ros.markers import Projection, glimpse_markers
from glimpse_ros.ros.overlay import draw_overlay
from glimpse_ros.ros.parameters import (ParameterError, declare_config_parameters,
                                        updated_configs)
from glimpse_ros.ros.ros_logging import forward_python_logging, stop_forwarding

try:  # vision_msgs is optional (not on PyPI)
    from vision_msgs.msg import Classification, ObjectHypothesis
except ImportError:  # pragma: no cover - depends on the ROS install
    Classification = ObjectHypothesis = None

WARN_THROTTLE_S = 5.0
TASK = "recognition"  # diagnostics status "<node name>: recognition"
SUCCESS = TransitionCallbackReturn.SUCCESS


class StartupError(ValueError):
    """The recognizer could not be built (model, labels, backend); the node logged why."""


def stamp_to_float(stamp) -> float:
    """builtin_interfaces/Time -> seconds."""
    return stamp.sec + stamp.nanosec * 1e-9


def default_recognizer(config: RecognizerConfig) -> Any:
    """Build the runtime Recognizer from its config (import deferred: it pulls in torch)."""
    from glimpse_ros.runtime.recognizer import Recognizer

    return Recognizer(config, checkpoint_path=config.model_path or None)


def _qos_options() -> QoSOverridingOptions:
    """``qos_overrides.<topic>.<publisher|subscription>.{history,depth,reliability}``."""
    return QoSOverridingOptions.with_default_policies()


class RecognizerNode(LifecycleNode):
    """ROS 2 (lifecycle) node wrapping the streaming Recognizer."""

    def __init__(self, recognizer_factory: Callable[[RecognizerConfig], Any] = default_recognizer,
                 node_name: str = "recognizer", **kwargs: Any) -> None:
        """Declare and check the parameters; unmanaged, also configure and activate.

        Raises:
            ParameterError: an invalid parameter (named in the message), before anything is built.
            StartupError: unmanaged, the recognizer could not be built.
        """
        super().__init__(node_name, **kwargs)
        self._log_handler = forward_python_logging(self.get_logger(), self.context.ok)
        try:
            self.config, self.node_config = declare_config_parameters(self)
        except ParameterError as err:
            self.get_logger().fatal(f"start-up failed: {err}")
            stop_forwarding(self._log_handler)
            raise
        self.add_on_set_parameters_callback(self._on_set_parameters)
        cfg: NodeConfig = self.node_config
        self._factory = recognizer_factory
        self.recognizer: Any = None
        self.stats = NodeStats(stale_timeout_s=cfg.stale_timeout_s)
        self._queue: DropOldestQueue[tuple[np.ndarray, Any]] = DropOldestQueue(cfg.queue_size)
        self._recent: collections.OrderedDict[float, tuple[Any, np.ndarray]] = \
            collections.OrderedDict()
        self._keep_frames = 18
        self._camera_info: CameraInfo | None = None
        self._reset_reason: str | None = None
        self._pending_config: RecognizerConfig | None = None
        self._lock = threading.Lock()
        self._running = False
        self._thread: threading.Thread | None = None
        self._inputs: list[Any] = []  # subscriptions, while active
        self._timer = None
        self._service = None
        self.label_pub = self.markers_pub = self.camera_markers_pub = None
        self.overlay_pub = self.diag_pub = self.class_pub = None
        self.topics = input_topics(self, cfg.image_topic, cfg.compressed, cfg.camera_info_topic)
        if not cfg.managed:
            if self.trigger_configure() != SUCCESS:
                raise StartupError(f"start-up failed: {self._configure_error}")
            self.trigger_activate()

    # ----- lifecycle -----
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Build the recognizer (model + engine), the publishers and the reset service."""
        self._configure_error = ""
        try:
            self.recognizer = self._factory(self.config)
        except Exception as err:  # noqa: BLE001 - model, labels, backend: reported, no traceback
            self._configure_error = f"{type(err).__name__}: {err}" if not isinstance(
                err, (ValueError, OSError)) else str(err)
            self.get_logger().fatal(f"configure failed: {self._configure_error}")
            self.recognizer = None
            return TransitionCallbackReturn.FAILURE
        if not self.context.ok():  # shut down (e.g. SIGINT) while the model was loading
            self._configure_error = "shutdown requested"
            self.recognizer = None
            return TransitionCallbackReturn.FAILURE
        self.stats.backend = str(getattr(self.recognizer, "backend_name", "unknown"))
        # Frames kept to pair results with their header and pixels: a window's results are for
        # frames pushed at most T frames ago (T = the model's window).
        self._keep_frames = 2 * int(getattr(self.recognizer, "frames", 8)) + 2
        pub = self.create_lifecycle_publisher
        self.label_pub = pub(String, "~/label", 10, qos_overriding_options=_qos_options())
        # ~/glimpses stay in the image-plane frame (the shipped RViz view needs no transform);
        # with a CameraInfo the same boxes also go to ~/glimpses_camera in the camera's frame.
        self.markers_pub = pub(MarkerArray, "~/glimpses", 10,
                               qos_overriding_options=_qos_options())
        self.camera_markers_pub = pub(MarkerArray, "~/glimpses_camera", 10,
                                      qos_overriding_options=_qos_options())
        self.overlay_pub = pub(Image, "~/overlay", 2, qos_overriding_options=_qos_options())
        self.diag_pub = pub(DiagnosticArray, "/diagnostics", 10)
        self.class_pub = (pub(Classification, "~/classification", 10,
                              qos_overriding_options=_qos_options())
                          if Classification is not None else None)
        self._service = self.create_service(Trigger, "~/reset", self._on_reset)
        self.get_logger().info(
            f"configured: backend {self.stats.backend}; "
            f"labels: {len(getattr(self.recognizer, 'labels', []) or [])}")
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe to the image and CameraInfo topics; start inference and diagnostics."""
        cfg = self.node_config
        # Best effort (REP-2003) is compatible with every publisher. With Fast DDS's default
        # transports large frames between processes are mostly lost; main() applies
        # config/fastdds.xml (large shared-memory segment), the publisher needs it too.
        # copies: QoS overrides are applied to the profile object in place
        input_qos = copy.copy(SENSOR_QOS if cfg.input_reliability == "best_effort"
                              else RELIABLE_INPUT_QOS)
        events = SubscriptionEventCallbacks(incompatible_qos=self._on_incompatible_qos,
                                            message_lost=self._on_message_lost)
        msg_type, callback = ((CompressedImage, self._on_compressed) if cfg.compressed
                              else (Image, self._on_image))
        self._inputs = [
            self.create_subscription(msg_type, self.topics.image, callback, input_qos,
                                     event_callbacks=events,
                                     qos_overriding_options=_qos_options()),
            self.create_subscription(CameraInfo, self.topics.camera_info, self._on_camera_info,
                                     copy.copy(SENSOR_QOS), qos_overriding_options=_qos_options())]
        self._running = True
        self._thread = threading.Thread(target=self._inference_loop, name="inference",
                                        daemon=True)
        self._thread.start()
        self._timer = self.create_timer(cfg.diagnostics_period_s, self._publish_diagnostics)
        self.get_logger().info(f"listening on {self.topics.image} "
                               f"(CameraInfo: {self.topics.camera_info})")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Unsubscribe and stop inference; nothing is published until activated again."""
        self._stop_processing()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Destroy publishers and service; free the recognizer (and its engine)."""
        self._release()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop everything, from whichever state."""
        self._stop_processing()
        self._release()
        return super().on_shutdown(state)

    def _stop_processing(self) -> None:
        for sub in self._inputs:
            self.destroy_subscription(sub)
        self._inputs = []
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None
        self._running = False
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        dropped = self._queue.clear()
        if dropped:
            self.stats.record_dropped(dropped)

    def _release(self) -> None:
        for name in ("label_pub", "markers_pub", "camera_markers_pub", "overlay_pub", "diag_pub",
                     "class_pub"):
            publisher = getattr(self, name)
            if publisher is not None:
                self.destroy_lifecycle_publisher(publisher)
                setattr(self, name, None)
        if self._service is not None:
            self.destroy_service(self._service)
            self._service = None
        self.recognizer = None  # the engine goes with it
        self._recent.clear()

    # ----- parameters -----
    def _on_set_parameters(self, params: list) -> SetParametersResult:
        """Validate a run-time change and apply it, or reject it with the reason.

        Read-only parameters, types and ranges were checked by rclpy (descriptors) already.
        Recognizer settings reach the recognizer from its next frame (inference thread).
        """
        try:
            config, node_config = updated_configs(self.config, self.node_config, params)
            frames = getattr(self.recognizer, "frames", None)
            if isinstance(frames, int) and config.stride > frames:
                raise ParameterError(f"invalid parameter: stride: {config.stride} exceeds the "
                                     f"model's window of {frames} frames")
        except ParameterError as err:
            return SetParametersResult(successful=False, reason=str(err))
        if config != self.config:
            with self._lock:
                self._pending_config = config
        self.config, self.node_config = config, node_config
        self.stats.stale_timeout_s = node_config.stale_timeout_s
        return SetParametersResult(successful=True)

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
            f"input_reliability={self.node_config.input_reliability} (and "
            f"qos_overrides.{self.topics.image}.subscription.*) it is not received")

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
                config, self._pending_config = self._pending_config, None
            if config is not None and hasattr(self.recognizer, "reconfigure"):
                self.recognizer.reconfigure(config)  # validated by _on_set_parameters
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
        cfg = self.node_config
        plane = Projection.image_plane(frame.shape[1], cfg.image_plane_frame_id)
        self.markers_pub.publish(glimpse_markers(boxes, text, header, plane,
                                                 cfg.marker_lifetime_s))
        info = self._camera_info
        if info is not None and self.camera_markers_pub.get_subscription_count() > 0:
            projection = Projection.from_camera_info(
                info, cfg.marker_depth_m, frame_id=header.frame_id,
                image_size=(frame.shape[1], frame.shape[0]))
            self.camera_markers_pub.publish(glimpse_markers(boxes, text, header, projection,
                                                            cfg.marker_lifetime_s))
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
        # diagnostic_updater conventions: "<node name>: <task>", one status per node with the
        # output-rate check merged in (see frequency_status.py).
        status = self.stats.status(hardware_id=self.get_fully_qualified_name(),
                                   name=f"{self.get_name()}: {TASK}")
        values = self.stats.snapshot()
        cfg = self.node_config
        merge_check(status, *frequency_check(
            float(values["processed_rate_hz"]), int(values["frames_processed"]),
            self.stats.window_s, cfg.min_output_rate_hz, cfg.max_output_rate_hz))
        self.diag_pub.publish(diagnostic_array(status, self.get_clock().now().to_msg()))

    def destroy_node(self) -> None:
        """Stop the inference thread, then destroy the node."""
        self._running = False
        if getattr(self, "_thread", None) is not None:
            self._queue.close()
            self._thread.join(timeout=5.0)
        if hasattr(self, "_log_handler"):
            stop_forwarding(self._log_handler)
        super().destroy_node()


__all__ = ["RecognizerNode", "SENSOR_QOS", "StartupError", "stamp_to_float"]
