"""Camera side of the torch-free node test: publishes frames one at a time, records the outputs.

``python -m torch_free_probe FRAMES.npy NODE_NAME OUT.json`` (PYTHONPATH: the repository and
test/). A process of its own because Fast DDS reads its profile once per process, before the
first participant: here ``config/fastdds.xml`` is applied first, as a camera driver should (raw
640x480 frames exceed Fast DDS's default 512 KB shared-memory segment), which cannot be arranged
in a pytest process whose earlier ROS tests created participants already.

Each frame (RGB array, sent as bgr8 with a CameraInfo) is stamped with the clock at publication
and the probe waits for its ``~/glimpses`` markers before sending the next, so the node sees
every frame. A frame whose result has not come after ``RESEND_S`` is sent again with a new stamp
(a best-effort frame lost, e.g. while discovery completes); every stamp that got a result is
reported, so the test can replay exactly the frames the node processed.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String
from visualization_msgs.msg import Marker, MarkerArray

from glimpse_ros.ros.image_message import rgb_to_image
from glimpse_ros.ros.transport import apply_default_transport

RESEND_S = 5.0
MATCH_TIMEOUT_S = 120.0
RESULT_TIMEOUT_S = 60.0
TEXT = re.compile(r"^(.*) \(([0-9.]+)\)$")  # glimpse_label marker: "<label> (<prob:.2f>)"


def camera_info(width: int, height: int) -> CameraInfo:
    """A pinhole CameraInfo for ``width`` x ``height`` frames."""
    f = 0.8 * width
    return CameraInfo(width=width, height=height, distortion_model="plumb_bob",
                      d=[0.0] * 5, k=[f, 0.0, width / 2, 0.0, f, height / 2, 0.0, 0.0, 1.0],
                      r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
                      p=[f, 0.0, width / 2, 0.0, 0.0, f, height / 2, 0.0, 0.0, 0.0, 1.0, 0.0])


class Probe:
    """Publishers of /image and /camera_info; subscribers to the outputs of node ``name``."""

    def __init__(self, name: str) -> None:
        """Create the node and start spinning it."""
        self.name = name
        self.node = rclpy.create_node("torch_free_probe")
        self.lock = threading.Lock()
        self.labels: list[str] = []
        self.results: dict[tuple[int, int], dict] = {}
        self.camera_stamps: set[tuple[int, int]] = set()
        self.diag: dict[str, str] = {}
        self.image_pub = self.node.create_publisher(Image, "/image", qos_profile_sensor_data)
        self.info_pub = self.node.create_publisher(CameraInfo, "/camera_info",
                                                   qos_profile_sensor_data)
        self.label_sub = self.node.create_subscription(String, f"/{name}/label",
                                                       self._on_label, 100)
        self.node.create_subscription(MarkerArray, f"/{name}/glimpses", self._on_markers, 100)
        self.node.create_subscription(MarkerArray, f"/{name}/glimpses_camera",
                                      self._on_camera_markers, 100)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop spinning, then destroy the node."""
        self.executor.shutdown()
        self.thread.join(timeout=10)
        self.node.destroy_node()

    def _on_label(self, msg: String) -> None:
        with self.lock:
            self.labels.append(msg.data)

    def _on_markers(self, msg: MarkerArray) -> None:
        stamp = msg.markers[0].header.stamp
        text = next(m.text for m in msg.markers if m.type == Marker.TEXT_VIEW_FACING)
        label, prob = TEXT.match(text).groups()
        centres = [[m.pose.position.x, m.pose.position.y] for m in msg.markers
                   if m.ns == "glimpse_centre"]
        with self.lock:
            self.results[(stamp.sec, stamp.nanosec)] = {"label": label, "prob": float(prob),
                                                        "centres": centres}

    def _on_camera_markers(self, msg: MarkerArray) -> None:
        stamp = msg.markers[0].header.stamp
        with self.lock:
            self.camera_stamps.add((stamp.sec, stamp.nanosec))

    def _on_diag(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.hardware_id == f"/{self.name}":
                with self.lock:
                    self.diag = {kv.key: kv.value for kv in status.values}

    def wait(self, predicate, timeout: float) -> bool:
        """Poll ``predicate`` (under the lock) for up to ``timeout`` s."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                if predicate():
                    return True
            time.sleep(0.005)
        return False

    def send(self, rgb: np.ndarray, info: CameraInfo) -> tuple[int, int]:
        """Publish CameraInfo and frame with the current time as stamp; return the stamp."""
        stamp = self.node.get_clock().now().to_msg()
        info.header.stamp = stamp
        info.header.frame_id = "camera"
        msg = rgb_to_image(rgb, encoding="bgr8")
        msg.header.stamp = stamp
        msg.header.frame_id = "camera"
        self.info_pub.publish(info)
        self.image_pub.publish(msg)
        return stamp.sec, stamp.nanosec


def main(argv: list[str]) -> int:
    """Publish every frame of ``argv[0]`` to node ``argv[1]``; write ``argv[2]`` (JSON)."""
    frames_path, name, out_path = argv
    frames = np.load(frames_path)
    profile = apply_default_transport()  # before rclpy.init, as the node's entry point does
    rclpy.init()
    probe = Probe(name)
    report: dict = {"profile": str(profile) if profile else None, "sent": [], "error": None}
    # Both directions matched: our image writer has the node's reader, our label reader the
    # node's writer (its participant has discovered ours).
    if not probe.wait(lambda: probe.image_pub.get_subscription_count() > 0
                      and probe.label_sub.get_publisher_count() > 0, MATCH_TIMEOUT_S):
        report["error"] = "the node's image subscription and label publisher never matched"
    info = camera_info(frames.shape[2], frames.shape[1])
    for index, rgb in enumerate(frames):
        if report["error"]:
            break
        deadline = time.monotonic() + RESULT_TIMEOUT_S
        while True:
            stamp = probe.send(rgb, info)
            report["sent"].append([index, *stamp])
            if probe.wait(lambda: stamp in probe.results, RESEND_S):
                break
            if time.monotonic() > deadline:
                report["error"] = f"no result for frame {index} in {RESULT_TIMEOUT_S} s"
                break
    # every label published (one per result), and diagnostics that count every result
    probe.wait(lambda: len(probe.labels) >= len(probe.results)
               and int(probe.diag.get("frames_processed", 0)) >= len(probe.results), 10.0)
    time.sleep(0.5)  # late results of frames sent twice
    with probe.lock:
        report.update(labels=probe.labels, diag=probe.diag,
                      results=[[*k, v] for k, v in sorted(probe.results.items())],
                      camera=sorted(probe.camera_stamps))
    with open(out_path, "w") as fh:
        json.dump(report, fh)
    probe.close()
    rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
