"""RecognizerNode in-process with a stand-in recognizer: parameters, queue, vision_msgs."""

from __future__ import annotations

import threading
import time
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from rclpy.parameter import Parameter  # noqa: E402

from glimpse_ros.ros.image_message import rgb_to_image  # noqa: E402
from glimpse_ros.ros.node import RecognizerNode  # noqa: E402
from glimpse_ros.ros.parameters import DESCRIPTIONS, ParameterError, parameter_names  # noqa: E402
from glimpse_ros.runtime.stream_policy import ResetKind  # noqa: E402


class SlowRecognizer:
    """Stand-in for the runtime Recognizer: one result per frame, ``delay`` s per push."""

    labels = ["wave", "clap"]
    backend_name = "stand-in"

    def __init__(self, config, delay: float = 0.0) -> None:
        """Remember the config."""
        self.config, self.delay, self.resets = config, delay, []
        self.reset_reasons: Counter[str] = Counter()
        self.gate = threading.Event()

    def reset(self, kind: ResetKind, message: str = "") -> None:
        """Record resets (by kind, like the runtime Recognizer)."""
        self.resets.append(kind)
        self.reset_reasons[kind] += 1

    def push(self, frame: np.ndarray, stamp: float) -> list:
        """Return one result per frame after waiting for the gate (to make the queue fill)."""
        self.gate.wait(5.0)
        return [SimpleNamespace(stamp=stamp, boxes=np.array([[1.0, 1.0, 5.0, 5.0]]), label="wave",
                                top_k=[("wave", 0.75), ("clap", 0.25)])]


def wait_processed(node: RecognizerNode, frames: int, timeout: float = 5.0) -> None:
    """Poll the node's statistics until ``frames`` frames were processed, or fail."""
    deadline = time.monotonic() + timeout
    while node.stats.snapshot()["frames_processed"] < frames:
        assert time.monotonic() < deadline, node.stats.snapshot()
        time.sleep(0.02)


def make_node(context, *overrides: Parameter) -> tuple[RecognizerNode, SlowRecognizer]:
    """Node with a SlowRecognizer; returns both."""
    made = []

    def factory(cfg):
        made.append(SlowRecognizer(cfg))
        return made[-1]

    node = RecognizerNode(factory, context=context, parameter_overrides=list(overrides))
    return node, made[0]


def test_parameters_declared_with_descriptions(context) -> None:
    """Every config field is a parameter with its description; values reach the configs."""
    node, rec = make_node(context, Parameter("stride", value=2),
                          Parameter("max_gap_s", value=3), Parameter("queue_size", value=3))
    try:
        for name in parameter_names():
            descriptor = node.describe_parameter(name)
            assert descriptor.description == DESCRIPTIONS[name]
        assert rec.config.stride == 2 and rec.config.max_gap_s == 3.0
        assert node.node_config.queue_size == 3
    finally:
        rec.gate.set()
        node.destroy_node()


@pytest.mark.parametrize("param", [Parameter("top_k", value=0), Parameter("compressed", value=1),
                                   Parameter("input_reliability", value="sometimes")])
def test_invalid_parameters_raise_naming_them(context, param: Parameter) -> None:
    """Start-up fails with a ParameterError naming the parameter."""
    with pytest.raises(ParameterError, match=param.name):
        make_node(context, param)


def test_callback_drops_oldest_when_inference_is_behind(context) -> None:
    """While inference is blocked, frames beyond queue_size are dropped and counted."""
    node, rec = make_node(context, Parameter("queue_size", value=2))
    try:
        msg = rgb_to_image(np.zeros((8, 8, 3), np.uint8))
        for i in range(8):
            msg.header.stamp.sec = i + 1
            node.input.on_image(msg)  # the subscription callback, called directly
        stats = node.stats.snapshot()
        # one frame is inside the blocked push, two wait, the rest were dropped
        assert stats["frames_received"] == 8
        assert stats["dropped_frames"] in (5, 6)
        rec.gate.set()
        deadline = time.monotonic() + 5
        while node.stats.snapshot()["frames_processed"] < 8 - stats["dropped_frames"]:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        response = node._on_reset(None, SimpleNamespace(success=False, message=""))
        assert response.success
        time.sleep(0.3)
        assert rec.resets == [ResetKind.REQUESTED]
    finally:
        rec.gate.set()
        node.destroy_node()


def test_vision_msgs_classification_published(context) -> None:
    """With vision_msgs importable, ~/classification carries the top-k with the source header."""
    pytest.importorskip("vision_msgs.msg")
    node, rec = make_node(context)
    try:
        assert node.outputs.class_pub is not None
        got = []
        from vision_msgs.msg import Classification

        sub = rclpy.create_node("class_sink", context=context)
        sub.create_subscription(Classification, "/recognizer/classification", got.append, 10)
        rec.gate.set()
        msg = rgb_to_image(np.zeros((8, 8, 3), np.uint8))
        msg.header.stamp.sec = 42
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            node.input.on_image(msg)
            rclpy.spin_once(sub, timeout_sec=0.1)
        assert got and got[0].header.stamp.sec == 42
        assert got[0].results[0].class_id == "wave"
        sub.destroy_node()
    finally:
        rec.gate.set()
        node.destroy_node()


def test_unexpected_conversion_error_is_counted_not_raised(context, monkeypatch) -> None:
    """Any exception from the converter is caught in the callback: rejection reason "internal"."""
    import glimpse_ros.ros.frame_input as input_module

    def broken(msg, max_pixels):
        raise RuntimeError("converter bug")

    monkeypatch.setattr(input_module, "image_to_rgb", broken)
    node, rec = make_node(context)
    try:
        msg = rgb_to_image(np.zeros((8, 8, 3), np.uint8))
        node.input.on_image(msg)  # must not raise
        node.input.on_image(msg)
        stats = node.stats.snapshot()
        assert stats["rejected_internal"] == 2 and stats["frames_received"] == 0
        assert "converter bug" in stats["last_error"]
    finally:
        rec.gate.set()
        node.destroy_node()


def test_frames_discarded_by_reset_are_counted_as_dropped(context) -> None:
    """Frames still queued when the reset service runs are reported, not silently lost."""
    node, rec = make_node(context, Parameter("queue_size", value=2))
    try:
        msg = rgb_to_image(np.zeros((8, 8, 3), np.uint8))
        for i in range(3):
            msg.header.stamp.sec = i + 1
            node.input.on_image(msg)
        time.sleep(0.2)  # one frame is inside the blocked push, the others wait in the queue
        before = node.stats.snapshot()["dropped_frames"]
        response = node._on_reset(None, SimpleNamespace(success=False, message=""))
        discarded = int(response.message.split(";")[1].split()[0])
        assert discarded >= 1
        assert node.stats.snapshot()["dropped_frames"] == before + discarded
    finally:
        rec.gate.set()
        node.destroy_node()


def test_resets_include_the_recognizers_own_by_kind(context) -> None:
    """Diagnostics count the recognizer's resets (gap, time jump, size change) and service ones."""
    node, rec = make_node(context)
    try:
        rec.reset_reasons = Counter({ResetKind.GAP: 3, ResetKind.TIME_JUMP: 1,
                                     ResetKind.REQUESTED: 1})
        rec.last_reset_reason = "gap of 9.000s > max_gap_s"
        rec.gate.set()
        deadline = time.monotonic() + 5
        while node.stats.snapshot()["resets"] != 5:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        stats = node.stats.snapshot()
        assert (stats["resets_gap"], stats["resets_time_jump"], stats["resets_requested"]) \
            == (3, 1, 1)
        assert stats["last_reset"] == "gap of 9.000s > max_gap_s"
    finally:
        rec.gate.set()
        node.destroy_node()


def test_publish_error_is_counted_and_the_inference_thread_survives(context,
                                                                    monkeypatch) -> None:
    """An exception while publishing one result is counted; later frames are still processed."""
    import glimpse_ros.ros.result_output as output_module

    real, calls = output_module.glimpse_markers, []

    def fail_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("cannot convert float NaN to integer")
        return real(*args, **kwargs)

    monkeypatch.setattr(output_module, "glimpse_markers", fail_once)
    node, rec = make_node(context, Parameter("queue_size", value=4))
    rec.gate.set()
    try:
        for sec in (1, 2):
            msg = rgb_to_image(np.zeros((8, 8, 3), np.uint8))
            msg.header.stamp.sec = sec
            node.input.on_image(msg)
        wait_processed(node, 1)
        stats = node.stats.snapshot()
        assert stats["rejected_output_error"] == 1 and stats["frames_processed"] == 1
        assert "NaN" in stats["last_error"] and node.inference.thread.is_alive()
    finally:
        node.destroy_node()


def test_failing_reset_is_counted_and_the_inference_thread_survives(context) -> None:
    """An exception outside push (here: the recognizer's reset) is counted; frames go on."""
    node, rec = make_node(context, Parameter("queue_size", value=4))
    rec.gate.set()

    def broken_reset(kind, message=""):
        raise RuntimeError("engine lost")

    rec.reset = broken_reset
    try:
        node._on_reset(None, SimpleNamespace(success=False, message=""))
        time.sleep(0.3)
        msg = rgb_to_image(np.zeros((8, 8, 3), np.uint8))
        msg.header.stamp.sec = 1
        node.input.on_image(msg)
        wait_processed(node, 1)
        stats = node.stats.snapshot()
        assert stats["rejected_inference_error"] == 1 and "engine lost" in stats["last_error"]
        assert node.inference.thread.is_alive()
    finally:
        node.destroy_node()


def test_failed_start_up_leaves_no_handler_or_node_behind(context) -> None:
    """A recognizer that cannot be built stops start-up; the node is destroyed on the way out."""
    import logging

    from glimpse_ros.ros.node import StartupError
    from glimpse_ros.ros.ros_logging import RosLogHandler

    def broken(cfg):
        raise ValueError("model file is broken")

    with pytest.raises(StartupError, match="model file is broken"):
        RecognizerNode(broken, context=context)
    handlers = logging.getLogger("glimpse_ros").handlers
    assert not any(isinstance(h, RosLogHandler) for h in handlers)
    # The name is free again: a second node of the same name starts in the same context.
    node, _ = make_node(context)
    node.destroy_node()


def test_forwarded_python_logging_keeps_every_severity(context) -> None:
    """INFO, WARNING and ERROR records from one logger all reach the ROS logger, in order."""
    import logging

    from glimpse_ros.ros.ros_logging import forward_python_logging, stop_forwarding

    seen: list[tuple[str, str]] = []

    class Recording:
        """Records calls; stands in for an rclpy logger."""

        def get_effective_level(self):
            return 20

        def __getattr__(self, name):
            return lambda message, **kw: seen.append((name, message))

    node = rclpy.create_node("log_forwarding", context=context)
    handler = forward_python_logging(node.get_logger())
    handler_rec = forward_python_logging(Recording())
    try:
        log = logging.getLogger("glimpse_ros.runtime")
        errors: list[logging.LogRecord] = []
        handler.handleError = errors.append
        for level in (logging.INFO, logging.WARNING, logging.INFO, logging.ERROR):
            log.log(level, "message at %s", logging.getLevelName(level))
        assert errors == []  # the real rclpy logger accepted every severity from the handler
        assert seen == [("info", "message at INFO"), ("warning", "message at WARNING"),
                        ("info", "message at INFO"), ("error", "message at ERROR")]
    finally:
        stop_forwarding(handler)
        stop_forwarding(handler_rec)
        node.destroy_node()
