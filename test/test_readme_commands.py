"""The README's "Running the node" commands, run as written (python path and video substituted).

The recognizer (shipped demo model, OpenVINO) and the replay run as two processes on a private
domain; this process checks that labels arrive, and that the replay's CameraInfo paired with the
image (camera-frame markers in the replay's frame).
"""

from __future__ import annotations

import os
import random
import re
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("openvino")
cv2 = pytest.importorskip("cv2")
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from visualization_msgs.msg import MarkerArray  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def readme_commands() -> list[list[str]]:
    """The ``.venv/bin/python`` lines of the first bash block of "Running the node"."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Running the node", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [shlex.split(line, comments=True) for line in block.splitlines()
            if line.startswith(".venv/bin/python")]


def write_video(path: Path, frames: int = 30, fps: float = 15.0) -> None:
    """A small moving-square video."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (96, 72))
    for i in range(frames):
        img = np.full((72, 96, 3), 40, np.uint8)
        cv2.rectangle(img, (5 + 2 * i, 20), (25 + 2 * i, 50), (0, 200, 255), -1)
        writer.write(img)
    writer.release()


@pytest.mark.slow
def test_readme_node_and_replay_commands_connect(tmp_path) -> None:
    """Node + replay commands of the README: labels arrive, CameraInfo pairs with the image."""
    commands = readme_commands()
    assert [c[2] for c in commands] == ["glimpse_ros.recognizer", "glimpse_ros.replay"]
    video = tmp_path / "clip.avi"
    write_video(video)
    domain = random.randint(1, 100)
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               OMP_NUM_THREADS="1", HOME=str(tmp_path))  # HOME: engine cache in tmp
    env.pop("ROS_LOCALHOST_ONLY", None)
    procs = []
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    node = rclpy.create_node("readme_probe", context=context)
    labels: list[str] = []
    camera_markers: list[MarkerArray] = []
    node.create_subscription(String, "/recognizer/label", lambda m: labels.append(m.data), 50)
    node.create_subscription(MarkerArray, "/recognizer/glimpses_camera", camera_markers.append,
                             50)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()
    try:
        for cmd in commands:
            cmd = [sys.executable if c == ".venv/bin/python" else
                   str(video) if c == "path/to/video.avi" else c for c in cmd]
            procs.append(subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, text=True))
        end = time.monotonic() + 240
        while time.monotonic() < end and not (labels and camera_markers):
            assert all(p.poll() is None for p in procs), [p.communicate()[0] for p in procs]
            time.sleep(0.2)
        assert labels, "no label from the README's commands"
        assert camera_markers, "no camera-frame markers: CameraInfo did not pair with the image"
        assert camera_markers[-1].markers[0].header.frame_id == "camera"  # replay's frame_id
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(2)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
