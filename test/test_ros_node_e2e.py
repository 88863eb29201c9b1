"""End to end over real DDS: the recognizer node runs in its own process, this process publishes.

One node process (raw images) serves the tests of this module in order, a second one subscribes to
compressed images; both start in parallel at module set-up (start-up dominates the run time).
"""

from __future__ import annotations

import math
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
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402
from visualization_msgs.msg import Marker, MarkerArray  # noqa: E402

from glimpse_ros.config import ModelConfig  # noqa: E402
from glimpse_ros.ros.image_message import rgb_to_image  # noqa: E402
from glimpse_ros.ros.service_client import call_until_answered  # noqa: E402

W, H = 64, 48
G = 3
DOMAIN = random.randint(1, 100)
REPO = Path(__file__).resolve().parents[1]


def node_env() -> dict[str, str]:
    """Environment of the node processes: private domain, localhost only, one thread.

    ROS_LOCALHOST_ONLY is deprecated since Jazzy (it warns); the discovery range replaces it.
    """
    env = dict(os.environ, ROS_DOMAIN_ID=str(DOMAIN), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.pop("ROS_LOCALHOST_ONLY", None)
    return env


def start_node(checkpoint: Path, name: str, *params: str) -> subprocess.Popen:
    """Run ``python -m glimpse_ros.recognizer`` with ``-p`` parameters in its own process."""
    cmd = [sys.executable, "-m", "glimpse_ros.recognizer", "--ros-args", "-r", f"__node:={name}",
           "-p", f"model_path:={checkpoint}", "-p", "backend:=torch", "-p", "num_threads:=1",
           "-p", "stride:=2", "-p", "diagnostics_period_s:=0.25", "-p", "max_frame_pixels:=20000"]
    for p in params:
        cmd += ["-p", p]
    return subprocess.Popen(cmd, cwd=REPO, env=node_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


class Probe:
    """Publisher + subscribers in this process, on their own rclpy context and executor."""

    def __init__(self, name: str) -> None:
        """Create the probe node, subscribe to everything the node ``name`` publishes."""
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=DOMAIN)
        self.node = rclpy.create_node("probe_" + name, context=self.context)
        self.name = name
        self.labels: list[str] = []
        self.markers: list[MarkerArray] = []
        self.overlays: list[Image] = []
        self.diag: dict[str, str] = {}
        # the node's defaults: relative image + camera_info, here in the root namespace
        self.image_pub = self.node.create_publisher(Image, "/image", 10)
        self.compressed_pub = self.node.create_publisher(CompressedImage, "/image/compressed", 10)
        self.info_pub = self.node.create_publisher(CameraInfo, "/camera_info", 10)
        self.node.create_subscription(String, f"/{name}/label", self._label, 50)
        self.node.create_subscription(MarkerArray, f"/{name}/glimpses", self.markers.append, 50)
        self.camera_markers: list[MarkerArray] = []
        self.node.create_subscription(MarkerArray, f"/{name}/glimpses_camera",
                                      self.camera_markers.append, 50)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._diag, 50)
        self.overlay_sub = None
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _label(self, msg: String) -> None:
        self.labels.append(msg.data)

    def _diag(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.hardware_id == f"/{self.name}":
                self.diag = {kv.key: kv.value for kv in status.values}

    def subscribe_overlay(self, on: bool) -> None:
        """Start or stop listening to the overlay."""
        if on:
            self.overlay_sub = self.node.create_subscription(
                Image, f"/{self.name}/overlay", self.overlays.append, 50)
        elif self.overlay_sub is not None:
            self.node.destroy_subscription(self.overlay_sub)
            self.overlay_sub = None

    def wait_for(self, predicate, timeout: float, what: str) -> None:
        """Poll ``predicate`` until true, or fail naming ``what``."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; diagnostics: {self.diag}")

    def stamp(self):
        """Current time as a builtin_interfaces/Time."""
        return self.node.get_clock().now().to_msg()

    def stream(self, count: int, period: float = 0.04, frame_id: str = "cam") -> list[tuple]:
        """Publish ``count`` random frames; return their (sec, nanosec) stamps."""
        rng = np.random.default_rng(len(self.labels))
        stamps = []
        for _ in range(count):
            msg = rgb_to_image(rng.integers(0, 256, (H, W, 3), dtype=np.uint8), encoding="bgr8")
            msg.header.stamp = self.stamp()
            msg.header.frame_id = frame_id
            stamps.append((msg.header.stamp.sec, msg.header.stamp.nanosec))
            self.image_pub.publish(msg)
            time.sleep(period)
        return stamps

    def close(self) -> None:
        """Shut the probe's context down."""
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    """Start the raw-image node and the compressed-image node; stop them at the end."""
    from glimpse_ros.model.checkpoint import save_checkpoint
    from glimpse_ros.model.glimpse_clouds import GlimpseClouds

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "small.safetensors"
    cfg = ModelConfig.small(num_classes=4, crop_size=32, resize_size=40, num_glimpses=G)
    save_checkpoint(path, GlimpseClouds(cfg), ["wave", "clap", "kick", "nod"])
    procs = {"raw_node": start_node(path, "raw_node"),
             "jpeg_node": start_node(path, "jpeg_node", "compressed:=true")}
    yield path, procs
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(2)  # SIGINT: clean rclpy shutdown
    for proc in procs.values():
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def raw(nodes):
    """Probe talking to the raw-image node, once it receives frames."""
    probe = Probe("raw_node")
    probe.wait_for(lambda: probe.image_pub.get_subscription_count() > 0, 60, "node subscription")
    yield probe, nodes[1]["raw_node"]
    probe.close()


def alive(proc: subprocess.Popen) -> bool:
    """Whether the node process still runs (prints its output when not)."""
    if proc.poll() is None:
        return True
    print(proc.stdout.read())
    return False


def test_labels_markers_stamps_and_overlay_only_when_subscribed(raw) -> None:
    """Frames in: labels, G in-image markers with source stamps, overlays only for a subscriber."""
    probe, proc = raw
    stamps = probe.stream(20)
    probe.wait_for(lambda: len(probe.markers) >= 10, 20, "markers")
    probe.wait_for(lambda: int(probe.diag.get("frames_processed", 0)) >= 10, 10, "diagnostics")
    assert alive(proc)
    assert probe.labels and set(probe.labels) <= {"wave", "clap", "kick", "nod"}
    assert probe.diag["backend"] == "torch"
    assert probe.diag["overlays_published"] == "0"  # nobody subscribed yet
    for arr in probe.markers:
        m0 = arr.markers[0]
        assert (m0.header.stamp.sec, m0.header.stamp.nanosec) in stamps
        boxes = [m for m in arr.markers if m.ns == "glimpse_box"]
        assert len(boxes) == G and len([m for m in arr.markers if m.type == Marker.SPHERE]) == G
        for m in arr.markers:
            assert m.header.frame_id == "glimpse_image_plane" and m.header.stamp == m0.header.stamp
        for p in (p for m in boxes for p in m.points):
            assert math.isfinite(p.x) and math.isfinite(p.y)
            # image plane: 1 m = image width; the box stays inside the image
            assert 0.0 <= p.x <= (W - 1) / W + 1e-6 and 0.0 <= p.y <= (H - 1) / W + 1e-6
    assert float(probe.diag["latency_p50_ms"]) >= 0.0

    probe.subscribe_overlay(True)
    probe.wait_for(lambda: probe.overlay_sub.get_publisher_count() > 0, 10, "overlay match")
    stamps = probe.stream(12)
    probe.wait_for(lambda: len(probe.overlays) >= 3, 20, "overlays")
    for img in probe.overlays:
        assert (img.header.stamp.sec, img.header.stamp.nanosec) in stamps
        assert (img.width, img.height, img.encoding, img.header.frame_id) == (W, H, "rgb8", "cam")
    probe.subscribe_overlay(False)
    time.sleep(0.5)
    probe.wait_for(lambda: int(probe.diag["overlays_published"]) >= len(probe.overlays), 5, "diag")
    before = int(probe.diag["overlays_published"])
    processed = int(probe.diag["frames_processed"])
    probe.stream(12)
    probe.wait_for(lambda: int(probe.diag["frames_processed"]) >= processed + 8, 20, "frames")
    assert int(probe.diag["overlays_published"]) == before  # unsubscribed: no overlay work


def test_camera_info_markers_and_reset(raw) -> None:
    """Check camera-frame markers with CameraInfo, and the reset service.

    ~/glimpses_camera is in the image's frame at marker_depth_m (the image-plane markers go on).
    """
    probe, proc = raw
    info = CameraInfo(width=W, height=H)
    info.k = [50.0, 0.0, W / 2, 0.0, 50.0, H / 2, 0.0, 0.0, 1.0]
    info.header.frame_id = "cam"
    for _ in range(3):
        probe.info_pub.publish(info)
        time.sleep(0.05)
    probe.markers.clear()
    probe.stream(12, frame_id="cam_optical")
    probe.wait_for(lambda: len(probe.camera_markers) >= 4, 20, "camera-frame markers")
    last = probe.camera_markers[-1].markers[0]
    assert last.header.frame_id == "cam_optical"
    assert all(p.z == pytest.approx(2.0) for p in last.points)
    # pinhole back-projection at 2 m of the first corner, from the markers in the image plane
    stamp = last.header.stamp
    plane = next(a.markers[0] for a in probe.markers if a.markers[0].header.stamp == stamp)
    assert plane.header.frame_id == "glimpse_image_plane"
    u, v = plane.points[0].x * W, plane.points[0].y * W  # image plane: 1 m = image width
    assert last.points[0].x == pytest.approx((u - W / 2) * 2.0 / 50.0, abs=1e-6)
    assert last.points[0].y == pytest.approx((v - H / 2) * 2.0 / 50.0, abs=1e-6)

    client = probe.node.create_client(Trigger, "/raw_node/reset")
    assert client.wait_for_service(timeout_sec=10)
    # A response written before the node's response writer matched our reader is lost; the
    # request itself is reliable and matched, so every one sent is executed: count them.
    response, sent = call_until_answered(probe.node, client, Trigger.Request(), timeout=10)
    assert response.success
    probe.stream(3)
    probe.wait_for(lambda: probe.diag.get("resets") == str(sent), 10, "resets in diagnostics")
    assert alive(proc)


def bad_images() -> dict[str, Image]:
    """One message per malformed class of DESIGN §4, keyed by the expected diagnostics reason."""
    good = rgb_to_image(np.zeros((H, W, 3), np.uint8))
    cases = {}
    m = rgb_to_image(np.zeros((H, W, 3), np.uint8))
    m.encoding = "32FC1"
    cases["encoding"] = m
    m = rgb_to_image(np.zeros((H, W, 3), np.uint8))
    m.step = W * 3 - 4
    cases["step"] = m
    m = rgb_to_image(np.zeros((H, W, 3), np.uint8))
    m.data = bytes(good.data)[: len(good.data) // 2]
    cases["truncated"] = m
    m = rgb_to_image(np.zeros((H, W, 3), np.uint8))
    m.data = bytes(good.data) + bytes(10)
    cases["size_mismatch"] = m
    cases["zero_size"] = Image(height=0, width=0, encoding="rgb8", step=0)
    cases["too_large"] = rgb_to_image(np.zeros((150, 200, 3), np.uint8))  # 30000 px > 20000
    return cases


def test_malformed_images_counted_and_node_survives(raw) -> None:
    """Every malformed class is rejected and counted; good frames are still processed after."""
    probe, proc = raw
    cases = bad_images()
    for _ in range(2):
        for msg in cases.values():
            msg.header.stamp = probe.stamp()
            probe.image_pub.publish(msg)
            time.sleep(0.02)
    probe.wait_for(lambda: all(probe.diag.get(f"rejected_{r}") == "2" for r in cases), 10,
                   "rejection counts")
    processed = int(probe.diag["frames_processed"])
    labels = len(probe.labels)
    probe.stream(12)
    probe.wait_for(lambda: int(probe.diag["frames_processed"]) >= processed + 8, 20, "good frames")
    assert len(probe.labels) > labels
    assert alive(proc)


@pytest.mark.slow
def test_compressed_node_rejects_corrupt_jpeg_and_keeps_going(nodes) -> None:
    """The compressed-image node: corrupt/truncated JPEG and bad formats counted, then works."""
    import cv2

    probe = Probe("jpeg_node")
    try:
        probe.wait_for(lambda: probe.compressed_pub.get_subscription_count() > 0, 60, "match")
        time.sleep(0.5)  # the node's reader may match a moment after our writer did
        jpeg = cv2.imencode(".jpg", np.zeros((H, W, 3), np.uint8))[1].tobytes()
        bad = {"corrupt": ("jpeg", b"\xff\xd8\xff\xe0 definitely not a jpeg" + bytes(100)),
               "truncated": ("jpeg", jpeg[: len(jpeg) // 2]), "format": ("tiff", jpeg),
               "zero_size": ("png", b"")}
        for fmt, data in bad.values():
            msg = CompressedImage(format=fmt)
            msg.header.stamp = probe.stamp()
            msg.data = data
            probe.compressed_pub.publish(msg)
            time.sleep(0.02)
        probe.wait_for(lambda: all(probe.diag.get(f"rejected_{r}") == "1" for r in bad), 10,
                       "rejection counts")
        rng = np.random.default_rng(1)
        for _ in range(12):
            msg = CompressedImage(format="jpeg")
            msg.header.stamp = probe.stamp()
            msg.data = cv2.imencode(".jpg", rng.integers(0, 256, (H, W, 3), np.uint8))[1].tobytes()
            probe.compressed_pub.publish(msg)
            time.sleep(0.04)
        probe.wait_for(lambda: len(probe.labels) >= 4, 20, "labels from JPEG frames")
        assert alive(nodes[1]["jpeg_node"])
    finally:
        probe.close()


@pytest.mark.parametrize("param,name", [
    ("stride:=abc", "stride"), ("backend:=cuda", "backend"), ("queue_size:=0", "queue_size"),
    ("strid:=3", "strid"), ("diagnostics_period_s:=.inf", "diagnostics_period_s"),
    ("marker_lifetime_s:=.inf", "marker_lifetime_s"), ("queue_size:=1000000000", "queue_size"),
    ("max_gap_s:=1e-9", "max_gap_s"), ("num_threads:=4096", "num_threads"),
    ("image_topic:=bad topic!", "image_topic")])
def test_invalid_parameter_stops_start_up_naming_it(param: str, name: str, tmp_path) -> None:
    """Stop on an invalid or unknown parameter: exit 2, named, no traceback, no model loaded."""
    proc = subprocess.run([sys.executable, "-m", "glimpse_ros.recognizer", "--ros-args", "-p",
                           param], cwd=REPO, env=node_env(), capture_output=True, text=True,
                          timeout=60)
    out = proc.stderr + proc.stdout
    assert proc.returncode == 2, out
    assert name in out and "Traceback" not in out
    assert "configured" not in out  # the model was never loaded


@pytest.mark.parametrize("content", [b"a: \xff\xfe: [\n", None])
def test_bad_params_file_exits_2_without_traceback(content, tmp_path) -> None:
    """A malformed (non-UTF-8, broken YAML) or missing params file: exit 2, no traceback."""
    path = tmp_path / "params.yaml"
    if content is not None:
        path.write_bytes(content)
    proc = subprocess.run([sys.executable, "-m", "glimpse_ros.recognizer", "--ros-args",
                           "--params-file", str(path)], cwd=REPO, env=node_env(),
                          capture_output=True, text=True, timeout=60)
    out = proc.stderr + proc.stdout
    assert proc.returncode == 2 and "Traceback" not in out and "params file" in out, out
