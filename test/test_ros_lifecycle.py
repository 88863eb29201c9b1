"""Managed (lifecycle) node over DDS.

The node runs in its own process with ``managed:=true``; this process drives it through the
lifecycle_msgs services and watches the graph and the topics.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
torch = pytest.importorskip("torch")
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from lifecycle_msgs.msg import State, Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from glimpse_ros.config import ModelConfig  # noqa: E402
from glimpse_ros.ros.image_message import rgb_to_image  # noqa: E402
from glimpse_ros.tools.reliability_harness import stop_process  # noqa: E402
from ros_pair import wait_for  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DOMAIN = random.randint(1, 100)
NAME = "lc"


@pytest.fixture(scope="module")
def managed_node(tmp_path_factory):
    """The node process, managed, on a small random model."""
    from glimpse_ros.model.checkpoint import save_checkpoint
    from glimpse_ros.model.glimpse_clouds import GlimpseClouds

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "small.safetensors"
    save_checkpoint(path, GlimpseClouds(ModelConfig.small(num_classes=2, crop_size=32,
                                                          resize_size=40)), ["wave", "clap"])
    env = dict(os.environ, ROS_DOMAIN_ID=str(DOMAIN), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.pop("ROS_LOCALHOST_ONLY", None)
    cmd = [sys.executable, "-m", "glimpse_ros.recognizer", "--ros-args", "-r",
           f"__node:={NAME}", "-p", "managed:=true", "-p", f"model_path:={path}",
           "-p", "backend:=torch", "-p", "num_threads:=1", "-p", "stride:=2",
           "-p", "diagnostics_period_s:=0.2"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    yield proc
    stop_process(proc)


class Manager:
    """Lifecycle client + camera + output listeners in this process."""

    def __init__(self) -> None:
        """Create the probe node on its own context and spin it."""
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=DOMAIN)
        self.node = rclpy.create_node("manager", context=self.context)
        self.outputs: list[str] = []
        self.node.create_subscription(String, f"/{NAME}/label",
                                      lambda m: self.outputs.append("label"), 50)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._diag, 50)
        self.camera = self.node.create_publisher(Image, "/image", 10)
        self.get_state = self.node.create_client(GetState, f"/{NAME}/get_state")
        self.change_state = self.node.create_client(ChangeState, f"/{NAME}/change_state")
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        threading.Thread(target=self.executor.spin, daemon=True).start()

    def _diag(self, msg: DiagnosticArray) -> None:
        if any(s.hardware_id == f"/{NAME}" for s in msg.status):
            self.outputs.append("diagnostics")

    def state(self) -> int:
        """Current primary state id."""
        return self.get_state.call(GetState.Request(), timeout_sec=10).current_state.id

    def transition(self, transition_id: int) -> bool:
        """Trigger a transition; whether it succeeded."""
        request = ChangeState.Request(transition=Transition(id=transition_id))
        return self.change_state.call(request, timeout_sec=120).success

    def stream(self, seconds: float) -> None:
        """Publish random 64x48 frames at ~25 fps."""
        rng = np.random.default_rng(0)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            msg = rgb_to_image(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
            msg.header.stamp = self.node.get_clock().now().to_msg()
            self.camera.publish(msg)
            time.sleep(0.04)

    def image_subscribers(self) -> int:
        """Subscriptions on the camera topic."""
        return self.node.count_subscribers("/image")

    def close(self) -> None:
        """Shut the context down."""
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def test_lifecycle_transitions_over_dds(managed_node) -> None:
    """Walk configure, activate, deactivate, cleanup; outputs only while active."""
    m = Manager()
    try:
        assert m.get_state.wait_for_service(timeout_sec=90), managed_node.poll()
        assert m.state() == State.PRIMARY_STATE_UNCONFIGURED
        assert m.image_subscribers() == 0
        m.stream(1.0)
        assert m.transition(Transition.TRANSITION_CONFIGURE)
        assert m.state() == State.PRIMARY_STATE_INACTIVE
        wait_for(lambda: m.node.count_publishers(f"/{NAME}/label") == 1, 10, "label publisher")
        assert m.image_subscribers() == 0  # configured, not subscribed yet
        m.stream(1.0)
        assert m.outputs == []  # nothing published before activate

        assert m.transition(Transition.TRANSITION_ACTIVATE)
        assert m.state() == State.PRIMARY_STATE_ACTIVE
        wait_for(lambda: m.image_subscribers() == 1, 10, "image subscription")
        m.stream(2.0)
        wait_for(lambda: "label" in m.outputs and "diagnostics" in m.outputs, 20, "outputs")

        assert m.transition(Transition.TRANSITION_DEACTIVATE)
        assert m.state() == State.PRIMARY_STATE_INACTIVE
        wait_for(lambda: m.image_subscribers() == 0, 10, "unsubscribed")
        time.sleep(0.5)
        count = len(m.outputs)
        m.stream(1.0)
        time.sleep(0.5)
        assert len(m.outputs) == count  # deactivated: no labels, no diagnostics

        assert m.transition(Transition.TRANSITION_CLEANUP)
        assert m.state() == State.PRIMARY_STATE_UNCONFIGURED
        wait_for(lambda: m.node.count_publishers(f"/{NAME}/label") == 0, 10, "publisher gone")
        services = {name for name, _ in m.node.get_service_names_and_types()}
        assert f"/{NAME}/reset" not in services
        # configure again: the model is loaded anew and the node works
        assert m.transition(Transition.TRANSITION_CONFIGURE)
        assert m.transition(Transition.TRANSITION_ACTIVATE)
        wait_for(lambda: m.image_subscribers() == 1, 10, "image subscription again")
        count = m.outputs.count("label")
        m.stream(2.0)
        wait_for(lambda: m.outputs.count("label") > count, 20, "labels again")
        assert managed_node.poll() is None
    finally:
        m.close()
