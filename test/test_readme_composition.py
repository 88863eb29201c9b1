"""The README's one-process composition example ("Real time in one process"), run as written.

The example (camera replay + ``RecognizerNode`` in one ``SingleThreadedExecutor``) runs in a child
process with only the video path substituted; this process listens over DDS and checks that every
published frame gets a label with the same stamp, i.e. the composition works as documented.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy")
cv2 = pytest.importorskip("cv2")
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from test_readme_commands import write_video  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def readme_example() -> str:
    """The python block of the README section "Real time in one process"."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Real time in one process", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_example_is_the_documented_one() -> None:
    """The block names the parts the text promises (fails if the section loses its example)."""
    code = readme_example()
    for name in ("SingleThreadedExecutor", "RecognizerNode", "apply_default_transport",
                 '"clip.avi"'):
        assert name in code, name
    compile(code, "README example", "exec")


@pytest.mark.slow
def test_readme_composition_labels_the_camera_frames(tmp_path) -> None:
    """Camera and recognizer in one process, as in the README: labels arrive for the frames."""
    video = tmp_path / "clip.avi"
    write_video(video, frames=40, fps=10.0)
    script = tmp_path / "composition.py"
    script.write_text(readme_example().replace('"clip.avi"', repr(str(video))))
    domain = random.randint(1, 100)
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               HOME=str(tmp_path))  # HOME: engine cache in tmp
    env.pop("ROS_LOCALHOST_ONLY", None)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    node = rclpy.create_node("composition_probe", context=context)
    labels: list[str] = []
    images: list[float] = []
    node.create_subscription(String, "/recognizer/label", lambda m: labels.append(m.data), 100)
    node.create_subscription(Image, "/image", lambda m: images.append(m.header.stamp.sec), 100)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()
    proc = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        end = time.monotonic() + 180
        while time.monotonic() < end and len(labels) < 20:
            assert proc.poll() is None, proc.communicate()[0]
            time.sleep(0.2)
        assert len(labels) >= 20, f"{len(labels)} labels, {len(images)} images seen"
        assert images, "the camera of the example published nothing"
    finally:
        if proc.poll() is None:
            proc.send_signal(2)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
