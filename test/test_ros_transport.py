"""The shipped Fast DDS profile: applied by default, and raw frames arrive with best-effort QoS."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

from glimpse_ros.ros.transport import PROFILE_ENV_VARS, apply_default_transport, profile_path

REPO = Path(__file__).resolve().parents[1]

# One child process per side; each applies the profile the way our entry points do (before
# rclpy.init). argv: role, width, height, fps, seconds.
CHILD = r"""
import json, sys, time
import numpy as np
import rclpy
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from glimpse_ros.ros.transport import apply_default_transport

role, w, h, fps, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), \
    float(sys.argv[5])
profile = apply_default_transport()
rclpy.init()
node = rclpy.create_node("transport_" + role)
qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                 reliability=ReliabilityPolicy.BEST_EFFORT)
if role == "sub":
    got = set()
    node.create_subscription(Image, "frames", lambda m: got.add(m.header.frame_id), qos)
    print("ready", flush=True)
    end, last = time.monotonic() + seconds + 8.0, str(int(fps * seconds) - 1)
    while time.monotonic() < end and last not in got:
        rclpy.spin_once(node, timeout_sec=0.05)
    print(json.dumps({"received": len(got), "profile": str(profile)}), flush=True)
else:
    pub = node.create_publisher(Image, "frames", qos)
    msg = Image(width=w, height=h, encoding="rgb8", step=3 * w)
    msg.data = np.random.default_rng(0).integers(0, 255, w * h * 3, dtype=np.uint8).tobytes()
    deadline = time.monotonic() + 10.0
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    n, start = 0, time.monotonic()
    while n < int(fps * seconds):
        time.sleep(max(0.0, start + n / fps - time.monotonic()))
        msg.header.frame_id = str(n)
        pub.publish(msg)
        n += 1
    print(json.dumps({"published": n}), flush=True)
    time.sleep(0.5)
"""


def test_profile_shipped_and_applied_only_when_user_chose_none() -> None:
    path = profile_path()
    assert path is not None and path.name == "fastdds.xml"
    text = path.read_text()
    assert "<segment_size>67108864</segment_size>" in text and "<type>UDPv4</type>" in text
    env: dict[str, str] = {}
    assert apply_default_transport(env) == path
    assert env == {"FASTDDS_DEFAULT_PROFILES_FILE": str(path)}  # Fast DDS 3 (Kilted, wheels)
    env = {"ROS_DISTRO": "jazzy"}
    assert apply_default_transport(env) == path
    assert env["FASTRTPS_DEFAULT_PROFILES_FILE"] == str(path)  # Fast DDS 2
    assert "FASTDDS_DEFAULT_PROFILES_FILE" not in env
    for user_env in ({"FASTDDS_DEFAULT_PROFILES_FILE": "/my.xml"},
                     {"FASTRTPS_DEFAULT_PROFILES_FILE": "/my.xml"},
                     {"FASTDDS_DEFAULT_PROFILES_FILE": ""},  # empty: Fast DDS defaults
                     {"SKIP_DEFAULT_XML": "1"},
                     {"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}):
        before = dict(user_env)
        assert apply_default_transport(user_env) is None
        assert user_env == before
    env = {"RMW_IMPLEMENTATION": "rmw_fastrtps_cpp"}
    assert apply_default_transport(env) == path


def test_best_effort_raw_frames_arrive_across_processes() -> None:
    """640x480 rgb8 at 10 fps, sensor-data QoS, two processes: most frames must arrive.

    Without the profile (Fast DDS's 512 KB shared-memory segment) about 1% arrive on this machine.
    """
    env = {k: v for k, v in os.environ.items()
           if k not in PROFILE_ENV_VARS and k != "SKIP_DEFAULT_XML"}
    env.update(ROS_DOMAIN_ID=str(random.randint(150, 199)),
               ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", PYTHONPATH=str(REPO))
    seconds = 4.0
    sub = subprocess.Popen([sys.executable, "-c", CHILD, "sub", "0", "0", "10", str(seconds)],
                           cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert sub.stdout.readline().strip() == "ready"
        pub = subprocess.run([sys.executable, "-c", CHILD, "pub", "640", "480", "10",
                              str(seconds)], cwd=REPO, env=env, capture_output=True, text=True,
                             timeout=30)
        assert pub.returncode == 0, pub.stderr
        published = json.loads(pub.stdout.strip().splitlines()[-1])["published"]
        out, _ = sub.communicate(timeout=30)
    finally:
        if sub.poll() is None:
            sub.kill()
    result = json.loads(out.strip().splitlines()[-1])
    assert result["profile"].endswith("fastdds.xml")
    assert published == 40
    assert result["received"] >= 0.8 * published, result
