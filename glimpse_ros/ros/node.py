"""RecognizerNode: camera in; label, glimpse markers, overlay and diagnostics out (DESIGN §4).

A managed (lifecycle) node. Unmanaged (``managed: false``, the default) it configures and
activates itself at start-up; managed, it waits for the lifecycle_msgs services:

- configure: build the recognizer (load the model, build the engine), create the publishers
  (``result_output.py``) and the ``~/reset`` service;
- activate: subscribe to the image and its CameraInfo, start inference and diagnostics;
- deactivate: unsubscribe, stop inference (queued frames are discarded and counted);
- cleanup: destroy publishers and service, free the recognizer and its engine.

Threads: the executor runs the subscription callbacks (``frame_input.py``), which only check
and convert the message and enqueue the frame (drop-oldest, counted); one inference thread
(``inference.py``) pops frames, decodes compressed ones, feeds the Recognizer and publishes its
results, every output stamped with the header of the frame it describes. A costly compressed
image never blocks the executor: the ~/reset service, CameraInfo and /diagnostics keep answering.
"""

from __future__ import annotations

import copy
from typing import Any, Callable

from rcl_interfaces.msg import SetParametersResult
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_srvs.srv import Trigger

from glimpse_ros.config import NodeConfig, RecognizerConfig
from glimpse_ros.ros.camera_topics import RELIABLE_INPUT_QOS, SENSOR_QOS, input_topics
from glimpse_ros.ros.diagnostics import NodeStats, diagnostic_array
from glimpse_ros.ros.frame_input import FrameInput
from glimpse_ros.ros.frequency_status import frequency_check, merge_check
from glimpse_ros.ros.inference import InferenceThread
from glimpse_ros.ros.parameters import (ParameterError, declare_config_parameters,
                                        integers_as_doubles, updated_configs)
from glimpse_ros.ros.result_output import ResultOutputs
from glimpse_ros.ros.ros_logging import forward_python_logging, stop_forwarding

TASK = "recognition"  # diagnostics status "<node name>: recognition"
SUCCESS = TransitionCallbackReturn.SUCCESS


class StartupError(ValueError):
    """The recognizer could not be built (model, labels, backend); the node logged why."""


def default_recognizer(config: RecognizerConfig) -> Any:
    """Build the runtime Recognizer from its config (import deferred: it pulls in torch)."""
    from glimpse_ros.runtime.recognizer import Recognizer

    return Recognizer(config, checkpoint_path=config.model_path or None)


def _qos_options() -> QoSOverridingOptions:
    """``qos_overrides.<topic>.subscription.{history,depth,reliability}``."""
    return QoSOverridingOptions.with_default_policies()


class RecognizerNode(LifecycleNode):
    """ROS 2 (lifecycle) node wrapping the streaming Recognizer."""

    def __init__(self, recognizer_factory: Callable[[RecognizerConfig], Any] = default_recognizer,
                 node_name: str = "recognizer", **kwargs: Any) -> None:
        """Declare and check the parameters; unmanaged, also configure and activate.

        Raises:
            ParameterError: an invalid parameter (named in the message; topic names included),
                before anything is built.
            StartupError: unmanaged, the recognizer could not be built.
        """
        super().__init__(node_name, **kwargs)
        try:
            self._start(recognizer_factory)
        except BaseException:
            # A node that failed to start is destroyed here: left to the garbage collector, its
            # handles would be finalised after (or, in a forked child, without) their context.
            self.destroy_node()
            raise

    def _start(self, recognizer_factory: Callable[[RecognizerConfig], Any]) -> None:
        """Everything ``__init__`` does after the rclpy node exists."""
        self._log_handler = forward_python_logging(self.get_logger(), self.context.ok)
        try:
            self.config, self.node_config = declare_config_parameters(self)
        except ParameterError as err:
            self.get_logger().fatal(f"start-up failed: {err}")
            raise
        self.add_pre_set_parameters_callback(integers_as_doubles)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        cfg: NodeConfig = self.node_config
        self._factory = recognizer_factory
        self.recognizer: Any = None
        self.stats = NodeStats(stale_timeout_s=cfg.stale_timeout_s,
                               no_output_timeout_s=cfg.no_output_timeout_s)
        self.inference = InferenceThread(self)
        self._inputs: list[Any] = []  # subscriptions, while active
        self._timer = None
        self._service = None
        self.outputs: ResultOutputs | None = None
        self.topics = input_topics(self, cfg.image_topic, cfg.compressed, cfg.camera_info_topic)
        self.input = FrameInput(self.stats, self.get_logger(), lambda: self.node_config,
                                self.topics.image)
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
        self.inference.keep_frames = 2 * int(getattr(self.recognizer, "frames", 8)) + 2
        self.outputs = ResultOutputs(self)
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
        events = SubscriptionEventCallbacks(incompatible_qos=self.input.on_incompatible_qos,
                                            message_lost=self.input.on_message_lost)
        # Two-argument callbacks: rclpy passes the MessageInfo (publisher sequence numbers).
        inp = self.input
        inp.gaps.reset()  # frames published while inactive were not lost in transport
        msg_type, callback = ((CompressedImage, lambda msg, info: inp.on_compressed(msg, info))
                              if cfg.compressed
                              else (Image, lambda msg, info: inp.on_image(msg, info)))
        self._inputs = [
            self.create_subscription(msg_type, self.topics.image, callback, input_qos,
                                     event_callbacks=events,
                                     qos_overriding_options=_qos_options()),
            self.create_subscription(CameraInfo, self.topics.camera_info, inp.on_camera_info,
                                     copy.copy(SENSOR_QOS), qos_overriding_options=_qos_options())]
        self.inference.start()
        self._timer = self.create_timer(cfg.diagnostics_period_s, self._publish_diagnostics)
        self.get_logger().info(f"listening on {self.topics.image} "
                               f"(CameraInfo: {self.topics.camera_info})")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Unsubscribe and stop inference; nothing is published until activated again."""
        self._stop_processing()
        self.input.gaps.reset()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Destroy publishers and service; free the recognizer (and its engine)."""
        self._release()
        self.input.gaps.reset()
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
        self.inference.running = False
        self.inference.join()
        self.input.discard()

    def _release(self) -> None:
        if self.outputs is not None:
            self.outputs.destroy()
            self.outputs = None
        if self._service is not None:
            self.destroy_service(self._service)
            self._service = None
        self.recognizer = None  # the engine goes with it
        self.inference.recent.clear()

    # ----- parameters -----
    def _on_set_parameters(self, params: list) -> SetParametersResult:
        """Validate a run-time change and apply it, or reject it with the reason.

        Read-only parameters, types and ranges were checked by rclpy (descriptors) already.
        Recognizer settings reach the recognizer from its next frame (inference thread).
        """
        try:
            config, node_config = updated_configs(self.config, self.node_config, params)
            frames = getattr(self.recognizer, "frames", None)
            windowed = not getattr(self.recognizer, "streaming", False)  # causal: no window
            if isinstance(frames, int) and windowed and config.stride > frames:
                raise ParameterError(f"invalid parameter: stride: {config.stride} exceeds the "
                                     f"model's window of {frames} frames")
        except ParameterError as err:
            return SetParametersResult(successful=False, reason=str(err))
        if config != self.config:
            self.inference.reconfigure(config)
        self.config, self.node_config = config, node_config
        self.stats.set_timeouts(node_config.stale_timeout_s, node_config.no_output_timeout_s)
        return SetParametersResult(successful=True)

    # ----- services -----
    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self.inference.request_reset()
        dropped = self.input.discard()  # counted like queue drops: nothing vanishes unreported
        response.success = True
        response.message = f"recognizer state reset; {dropped} queued frames discarded"
        return response

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
        self.outputs.diag_pub.publish(diagnostic_array(status, self.get_clock().now().to_msg()))

    def destroy_node(self) -> None:
        """Stop the inference thread, then destroy the node."""
        inference = getattr(self, "inference", None)
        if inference is not None:
            inference.running = False
            if inference.thread is not None:
                self.input.queue.close()
                inference.join()
        if hasattr(self, "_log_handler"):
            stop_forwarding(self._log_handler)
            del self._log_handler
        super().destroy_node()


__all__ = ["RecognizerNode", "SENSOR_QOS", "StartupError"]
