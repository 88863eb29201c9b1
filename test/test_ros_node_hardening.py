"""RecognizerNode in process: decoding off the executor, non-finite guards, topic names.

Compressed frames are decoded on the inference thread, CameraInfo and outputs are checked for
non-finite numbers, topic names are validated before the model is built.
"""

from __future__ import annotations

import math
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
import cv2  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage  # noqa: E402
from test_ros_node_unit import make_node  # noqa: E402

import glimpse_ros.sources.image_decoding as conversion  # noqa: E402
from glimpse_ros.sources.image_decoding import ImageConversionError  # noqa: E402
from glimpse_ros.sources.image_decoding import inspect_compressed  # noqa: E402
from glimpse_ros.ros.markers import Projection, check_camera_info, glimpse_markers  # noqa: E402
from glimpse_ros.ros.parameters import ParameterError  # noqa: E402
from glimpse_ros.tools.reliability_fuzz import scan_bomb_jpeg  # noqa: E402


def wait_until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_scan_bomb_refused_from_its_header_without_decoding(monkeypatch) -> None:
    """The 4096x4096 progressive JPEG with 2000 extra scans: too_many_scans, decoder untouched."""
    data = scan_bomb_jpeg(4096, 4096, 2000)
    assert len(data) < 300_000
    monkeypatch.setattr(conversion.cv2, "imdecode", lambda *a: pytest.fail("decoded"))
    with pytest.raises(ImageConversionError) as err:
        inspect_compressed(CompressedImage(format="jpeg", data=data))
    assert err.value.reason == "too_many_scans" and "2010 scans" in str(err.value)


def test_compressed_callback_only_enqueues_decoding_runs_on_the_inference_thread(
        context, monkeypatch) -> None:
    """The callback returns before the decoder runs; decoding happens on the inference thread."""
    threads, real = [], conversion.cv2.imdecode

    def spy(*args):
        threads.append(threading.current_thread().name)
        return real(*args)

    monkeypatch.setattr(conversion.cv2, "imdecode", spy)
    node, rec = make_node(context, Parameter("compressed", value=True))
    try:
        rec.gate.set()
        ok, buf = cv2.imencode(".jpg", np.zeros((24, 32, 3), np.uint8))
        msg = CompressedImage(format="jpeg", data=buf.tobytes())
        msg.header.stamp.sec = 7
        node.input.on_compressed(msg)
        wait_until(lambda: node.stats.snapshot()["frames_processed"] == 1)
        assert threads == ["inference"]
    finally:
        rec.gate.set()
        node.destroy_node()


def test_corrupt_jpeg_with_a_valid_header_is_counted_after_decoding(context) -> None:
    """Header fine, entropy data garbage that decodes to nothing: rejected, counted 'corrupt'."""
    node, rec = make_node(context)
    try:
        rec.gate.set()
        ok, buf = cv2.imencode(".jpg", np.zeros((24, 32, 3), np.uint8))
        data = buf.tobytes()
        sos = data.index(b"\xff\xda")
        bad = data[:sos] + b"\xff\xd9"  # no scan at all
        node.input.on_compressed(CompressedImage(format="jpeg", data=bad))
        wait_until(lambda: node.stats.snapshot()["rejected_frames"] == 1)
        assert node.stats.snapshot()["rejected_corrupt"] == 1
    finally:
        rec.gate.set()
        node.destroy_node()


def camera_info(fx=500.0, fy=500.0, cx=32.0, cy=24.0) -> CameraInfo:
    info = CameraInfo(width=64, height=48)
    info.k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
    return info


@pytest.mark.parametrize("field,value", [("cx", math.nan), ("fx", math.inf), ("fx", 1e-320),
                                         ("fy", 0.0), ("fy", -500.0), ("cy", -math.inf)])
def test_camera_info_with_bad_intrinsics_is_refused_and_counted(context, field, value) -> None:
    """Bad K (NaN cx, inf fx, denormal fx): refused by the check and counted by the node."""
    info = camera_info(**{field: value})
    with pytest.raises(ValueError, match=field):
        check_camera_info(info)
    node, rec = make_node(context)
    try:
        node.input.on_camera_info(camera_info())
        node.input.on_camera_info(info)
        assert node.stats.snapshot()["camera_info_rejected"] == 1
        assert node.input.camera_info.k[0] == 500.0  # the last valid one is kept
    finally:
        rec.gate.set()
        node.destroy_node()


def test_markers_never_carry_non_finite_numbers() -> None:
    """A projection or box that would put NaN/Inf into a marker raises instead."""
    header = SimpleNamespace(stamp=SimpleNamespace(sec=1, nanosec=0))
    ok = Projection("cam", 32.0, 24.0, 0.004, 0.004, 2.0)
    glimpse_markers(np.array([[1.0, 2.0, 10.0, 12.0]]), "x", header, ok)
    for boxes, proj in ((np.array([[1.0, math.nan, 10.0, 12.0]]), ok),
                        (np.array([[1.0, 2.0, 10.0, 12.0]]),
                         Projection("cam", 32.0, 24.0, math.inf, 0.004, 2.0))):
        with pytest.raises(ValueError, match="non-finite"):
            glimpse_markers(boxes, "x", header, proj)


def test_non_finite_result_is_skipped_and_counted(context) -> None:
    """A result with a NaN box publishes nothing (no label, no markers) and counts an error."""
    node, rec = make_node(context)
    published = []
    node.outputs.label_pub = SimpleNamespace(publish=published.append)
    try:
        frame = np.zeros((8, 8, 3), np.uint8)
        node.inference.recent[5.0] = (SimpleNamespace(stamp=None, frame_id="cam"), frame)
        result = SimpleNamespace(stamp=5.0, boxes=np.array([[1.0, 1.0, math.nan, 5.0]]),
                                 label="wave", top_k=[("wave", 0.7)])
        with pytest.raises(ValueError, match="non-finite"):
            node.inference.publish_result(result)
        assert published == []
    finally:
        rec.gate.set()
        node.destroy_node()


@pytest.mark.parametrize("name,value", [("image_topic", "bad topic!"),
                                        ("camera_info_topic", "a//b"),
                                        ("image_topic", "1camera")])
def test_invalid_topic_names_fail_before_the_model_is_built(context, name, value) -> None:
    """A ParameterError names the parameter; the recognizer factory is never called."""
    built = []
    from glimpse_ros.ros.node import RecognizerNode

    with pytest.raises(ParameterError, match=name):
        RecognizerNode(built.append, context=context,
                       parameter_overrides=[Parameter(name, value=value)])
    assert built == []


def test_incompatible_publisher_and_sequence_gaps_are_counted(context) -> None:
    """Incompatible QoS and messages overwritten before the callback are counted.

    A best-effort publisher to a reliable subscription is an incompatible-QoS event; a burst into
    the depth-1 reader loses all but the newest, counted from the publisher's sequence numbers.
    """
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from glimpse_ros.ros.image_message import rgb_to_image

    node, rec = make_node(context, Parameter("input_reliability", value="reliable"))
    other = rclpy.create_node("cam", context=context)
    executor = SingleThreadedExecutor(context=context)
    try:
        rec.gate.set()
        best_effort = other.create_publisher(
            Image, node.topics.image,
            QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT))
        executor.add_node(node)
        wait_spin(executor, lambda: node.stats.snapshot()["incompatible_qos"] >= 1)
        other.destroy_publisher(best_effort)
        reliable = other.create_publisher(Image, node.topics.image, 10)
        wait_spin(executor, lambda: reliable.get_subscription_count() > 0)
        msg = rgb_to_image(np.zeros((8, 8, 3), np.uint8))
        reliable.publish(msg)  # the first message sets the publisher's baseline
        wait_spin(executor, lambda: node.stats.snapshot()["messages_received"] == 1)
        for i in range(30):  # sent faster than taken: the depth-1 reader keeps only the newest
            msg.header.stamp.sec = i + 1
            reliable.publish(msg)
        wait_spin(executor, lambda: False, timeout=0.5)
        snap = node.stats.snapshot()
        assert snap["skipped_by_middleware"] > 0, snap
        assert snap["messages_received"] - 1 + snap["skipped_by_middleware"] == 30, snap
    finally:
        executor.shutdown()
        other.destroy_node()
        rec.gate.set()
        node.destroy_node()


def wait_spin(executor, predicate, timeout: float = 10.0) -> None:
    """Spin ``executor`` until ``predicate`` holds (or ``timeout`` when it never does)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            assert timeout < 1.0, "timed out"
            return
        executor.spin_once(timeout_sec=0.05)
