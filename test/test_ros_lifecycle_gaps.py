"""Managed node in process: frames published while it was inactive are not middleware losses.

While deactivated the node has no subscription, so a camera's messages reach nobody; on
activation the first message's publisher sequence number jumps by all of them. The per-publisher
tracking restarts on deactivate/activate/cleanup, so ``skipped_by_middleware`` stays 0.
"""

from __future__ import annotations

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from test_ros_node_hardening import wait_spin  # noqa: E402
from test_ros_node_unit import SlowRecognizer  # noqa: E402

from glimpse_ros.ros.image_message import rgb_to_image  # noqa: E402
from glimpse_ros.ros.node import RecognizerNode  # noqa: E402


@pytest.mark.parametrize("via_cleanup", [False, True])
def test_frames_published_while_inactive_are_not_counted_as_skipped(context,
                                                                    via_cleanup: bool) -> None:
    """1 frame active, 20 while inactive (or unconfigured), 1 after activation: 0 skipped."""
    made: list[SlowRecognizer] = []

    def factory(cfg):
        made.append(SlowRecognizer(cfg))
        made[-1].gate.set()
        return made[-1]

    node = RecognizerNode(factory, context=context,
                          parameter_overrides=[Parameter("managed", value=True)])
    cam = rclpy.create_node("cam", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    executor.add_node(cam)
    pub = cam.create_publisher(Image, node.topics.image, 10)
    msg = rgb_to_image(np.zeros((8, 8, 3), np.uint8))

    def send(n: int) -> None:
        for _ in range(n):
            msg.header.stamp.sec += 1
            pub.publish(msg)

    def received() -> int:
        return int(node.stats.snapshot()["messages_received"])

    try:
        node.trigger_configure()
        node.trigger_activate()
        wait_spin(executor, lambda: pub.get_subscription_count() > 0)
        send(1)
        wait_spin(executor, lambda: received() == 1)
        node.trigger_deactivate()
        if via_cleanup:
            node.trigger_cleanup()
        wait_spin(executor, lambda: pub.get_subscription_count() == 0)
        send(20)  # nobody subscribes: not delivered, not lost by the middleware either
        wait_spin(executor, lambda: False, timeout=0.3)
        if via_cleanup:
            node.trigger_configure()
        node.trigger_activate()
        wait_spin(executor, lambda: pub.get_subscription_count() > 0)
        send(1)
        wait_spin(executor, lambda: received() == 2)
        snap = node.stats.snapshot()
        assert snap["skipped_by_middleware"] == 0, snap
        send(1)  # tracking goes on after the restart: one more, still nothing skipped
        wait_spin(executor, lambda: received() == 3)
        assert node.stats.snapshot()["skipped_by_middleware"] == 0
    finally:
        executor.shutdown()
        cam.destroy_node()
        node.destroy_node()
