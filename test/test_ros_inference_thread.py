"""Inference runs on the node's inference thread, never on an executor thread (real DDS)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from sensor_msgs.msg import Image  # noqa: E402

from glimpse_ros.ros.image_message import rgb_to_image  # noqa: E402
from ros_pair import RosPair, wait_for  # noqa: E402


def test_frames_from_dds_are_pushed_on_the_inference_thread_only() -> None:
    """The subscription callback runs on the executor; every push on the "inference" thread."""
    pair = RosPair()
    try:
        node = pair.start()
        callback_threads: list[threading.Thread] = []
        on_image = node.input.on_image

        def recording(msg, info=None):  # the callback the subscription calls, wrapped
            callback_threads.append(threading.current_thread())
            return on_image(msg) if info is None else on_image(msg, info)

        node.input.on_image = recording
        camera = pair.client.create_publisher(Image, "/image", 10)
        wait_for(lambda: camera.get_subscription_count() > 0, 10, "image subscription")
        rec = pair.made[0]
        stamps = iter(range(1, 10_000))

        def publish_and_check() -> bool:
            msg = rgb_to_image(np.zeros((8, 16, 3), np.uint8))
            msg.header.stamp.sec = next(stamps)
            camera.publish(msg)
            return len(rec.threads) >= 5

        wait_for(publish_and_check, 20, "five frames pushed")
        assert callback_threads, "the subscription callback never ran"
        inference = node.inference.thread
        assert {t.name for t in rec.threads} == {"inference"}
        assert all(t is inference for t in rec.threads)
        assert not any(t is inference for t in callback_threads)
    finally:
        pair.close()
