"""Graph-level interface of the node over DDS.

QoS overrides, CameraInfo pairing with remapping, diagnostics naming, logging through the node's
logger, and the shipped RViz view.

The node (stand-in recognizer) runs in one rclpy context, the checks in another on the same
private domain: only what DDS shows is looked at.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

rclpy = pytest.importorskip("rclpy")
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from rcl_interfaces.msg import Log  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from visualization_msgs.msg import MarkerArray  # noqa: E402

from glimpse_ros.ros.image_message import rgb_to_image  # noqa: E402
from ros_pair import RosPair, wait_for  # noqa: E402

RVIZ = Path(__file__).resolve().parents[1] / "config" / "recognizer.rviz"


@pytest.fixture
def pair():
    """Node + client contexts."""
    p = RosPair()
    yield p
    p.close()


def subscribers(pair: RosPair, topic: str) -> list:
    """Subscriptions on ``topic`` as the client's graph sees them."""
    return pair.client.get_subscriptions_info_by_topic(topic)


def test_qos_overrides_apply_to_the_image_subscription_and_outputs(pair) -> None:
    """qos_overrides.<topic>.subscription.reliability:=reliable changes the actual QoS."""
    pair.start(Parameter("qos_overrides./image.subscription.reliability",
                         value="reliable"),
               Parameter("qos_overrides./recognizer/label.publisher.reliability",
                         value="best_effort"))
    wait_for(lambda: subscribers(pair, "/image"), 10, "image subscription")
    (info,) = subscribers(pair, "/image")
    assert info.qos_profile.reliability == ReliabilityPolicy.RELIABLE
    wait_for(lambda: pair.client.get_publishers_info_by_topic("/recognizer/label"), 10, "label")
    (info,) = pair.client.get_publishers_info_by_topic("/recognizer/label")
    assert info.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
    # a best-effort camera does not match a reliable subscription (it did by default)
    pub = pair.client.create_publisher(
        Image, "/image", QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT))
    time.sleep(1.0)
    assert pub.get_subscription_count() == 0


def test_default_input_qos_is_sensor_data(pair) -> None:
    """Without overrides the image subscription is best effort (REP-2003)."""
    pair.start()
    wait_for(lambda: subscribers(pair, "/image"), 10, "image subscription")
    (info,) = subscribers(pair, "/image")
    assert info.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT


@pytest.mark.parametrize("compressed", [False, True])
def test_default_topics_are_relative_to_the_namespace(pair, compressed) -> None:
    """-r __ns:=/robot1 -> /robot1/image[/compressed] and /robot1/camera_info."""
    node = pair.start(Parameter("compressed", value=compressed),
                      cli_args=["--ros-args", "-r", "__ns:=/robot1"])
    image = "/robot1/image/compressed" if compressed else "/robot1/image"
    wait_for(lambda: subscribers(pair, "/robot1/camera_info") and subscribers(pair, image), 10,
             "subscriptions")
    assert not subscribers(pair, "/image") and not subscribers(pair, "/camera_info")
    assert not subscribers(pair, "/image/compressed")
    assert (node.topics.image, node.topics.camera_info) == (image, "/robot1/camera_info")


@pytest.mark.parametrize("compressed", [False, True])
def test_camera_info_is_the_sibling_of_the_remapped_image_topic(pair, compressed) -> None:
    """-r image:=/cam1/image_raw -> /cam1/image_raw[/compressed], /cam1/camera_info."""
    node = pair.start(Parameter("compressed", value=compressed),
                      cli_args=["--ros-args", "-r", "image:=/cam1/image_raw"])
    image = "/cam1/image_raw/compressed" if compressed else "/cam1/image_raw"
    wait_for(lambda: subscribers(pair, "/cam1/camera_info") and subscribers(pair, image), 10,
             "subscriptions")
    assert not subscribers(pair, "/image") and not subscribers(pair, "/camera_info")
    assert not subscribers(pair, "/image/compressed")
    assert (node.topics.image, node.topics.camera_info) == (image, "/cam1/camera_info")


def test_camera_info_topic_parameter_overrides_the_pairing(pair) -> None:
    """An explicit camera_info_topic wins over the sibling rule; CameraInfo there is used."""
    node = pair.start(Parameter("camera_info_topic", value="/calib/info"))
    wait_for(lambda: subscribers(pair, "/calib/info"), 10, "camera_info subscription")
    assert not subscribers(pair, "/camera_info")
    info = CameraInfo(width=16, height=8)
    info.k = [10.0, 0.0, 8.0, 0.0, 10.0, 4.0, 0.0, 0.0, 1.0]
    pub = pair.client.create_publisher(CameraInfo, "/calib/info", 10)
    wait_for(lambda: pub.publish(info) or node.input.camera_info is not None, 10,
             "CameraInfo received")  # best effort: publish until discovery completed both ways


def test_diagnostics_named_after_the_node_with_frequency_status(pair) -> None:
    """Two nodes: "<name>: recognition", hardware_id = node, frequency keys and tolerances."""
    statuses: dict[str, DiagnosticStatus] = {}

    def on_diag(msg: DiagnosticArray) -> None:
        for status in msg.status:
            statuses[status.name] = status

    pair.client.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 50)
    pair.start(Parameter("diagnostics_period_s", value=0.1), Parameter("image_topic", value="a"),
               node_name="left", namespace="arm")
    pair.start(Parameter("diagnostics_period_s", value=0.1), Parameter("image_topic", value="b"),
               Parameter("min_output_rate_hz", value=5.0),
               Parameter("max_output_rate_hz", value=10.0), node_name="right")
    wait_for(lambda: {"left: recognition", "right: recognition"} <= set(statuses), 10,
             "both statuses")
    left, right = statuses["left: recognition"], statuses["right: recognition"]
    assert left.hardware_id == "/arm/left" and right.hardware_id == "/right"
    values = {kv.key: kv.value for kv in right.values}
    # diagnostic_updater: bounds with the default tolerance of 10 %
    assert float(values["Minimum acceptable frequency (Hz)"]) == pytest.approx(4.5)
    assert float(values["Maximum acceptable frequency (Hz)"]) == pytest.approx(11.0)
    assert values["Events since startup"] == "0"
    # no output at all with a lower bound: ERROR "No events recorded." (as diagnostic_updater)
    assert right.level == DiagnosticStatus.ERROR and "No events recorded." in right.message
    # without bounds an idle node is not an error (the stale check reports the camera)
    assert left.level != DiagnosticStatus.ERROR


def test_runtime_python_logging_goes_to_rosout_under_the_node_logger(pair) -> None:
    """A glimpse_ros.* logging record arrives on /rosout named after the node and namespace."""
    got: list[Log] = []
    pair.client.create_subscription(Log, "/rosout", got.append, 100)
    pair.start(node_name="rec_a", namespace="cell")
    wait_for(lambda: pair.client.count_publishers("/rosout") >= 2, 10, "rosout publisher")
    time.sleep(0.5)
    logging.getLogger("glimpse_ros.runtime").warning("engine cache rebuilt (marker 4711)")
    wait_for(lambda: any("marker 4711" in m.msg for m in got), 10, "rosout message")
    msg = next(m for m in got if "marker 4711" in m.msg)
    assert msg.name == "cell.rec_a" and msg.level == Log.WARN


def test_shipped_rviz_view_shows_the_markers_with_and_without_camera_info(pair) -> None:
    """Check the .rviz file against what the node publishes.

    Its topics exist on the node; every marker on its MarkerArray topic is in the fixed frame,
    before and after CameraInfo arrives (no transform is published).
    """
    manager = yaml.safe_load(RVIZ.read_text())["Visualization Manager"]
    fixed = manager["Global Options"]["Fixed Frame"]
    topics = {d["Class"]: d["Topic"]["Value"] for d in manager["Displays"]}
    node = pair.start()
    published = {name for name, _ in node.get_publisher_names_and_types_by_node(
        node.get_name(), node.get_namespace())}
    assert set(topics.values()) <= published, set(topics.values()) - published
    markers: list[MarkerArray] = []
    pair.client.create_subscription(MarkerArray, topics["rviz_default_plugins/MarkerArray"],
                                    markers.append, 50)
    camera_info = pair.client.create_publisher(CameraInfo, "/camera_info", 10)
    wait_for(lambda: pair.client.count_publishers(topics["rviz_default_plugins/MarkerArray"]),
             10, "marker publisher")
    time.sleep(0.5)
    frame = rgb_to_image(np.zeros((8, 16, 3), np.uint8))
    frame.header.frame_id = "camera_optical"
    for phase in ("no CameraInfo", "CameraInfo"):
        if phase == "CameraInfo":
            info = CameraInfo(width=16, height=8)
            info.k = [10.0, 0.0, 8.0, 0.0, 10.0, 4.0, 0.0, 0.0, 1.0]
            wait_for(lambda: camera_info.publish(info) or node.input.camera_info is not None, 10,
                     "CameraInfo")
        markers.clear()
        for sec in range(1, 4):
            frame.header.stamp.sec = sec + (10 if phase == "CameraInfo" else 0)
            node.input.on_image(frame)
            time.sleep(0.1)  # queue_size 2: give inference time, no frame dropped
        wait_for(lambda: len(markers) >= 2, 10, f"markers ({phase})")
        frames = {m.header.frame_id for arr in markers for m in arr.markers}
        assert frames == {fixed}, phase
