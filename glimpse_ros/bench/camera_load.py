"""The outside of ``make bench-node``: a camera-like publisher and a listener of the node.

Owns the load side of the node benchmark: video frames pre-built as bgr8 Image (or JPEG
CompressedImage) messages, their publication at a fixed rate with fresh stamps, and the
:class:`Listener` that records when the node's glimpse markers arrive (with the source stamp
they carry) and its latest diagnostics values.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import CompressedImage, Image
from visualization_msgs.msg import MarkerArray

from glimpse_ros.ros.image_message import rgb_to_image
from glimpse_ros.ros.inference import stamp_to_float


def load_frames(path: Path, size: tuple[int, int] | None, count: int,
                compressed: bool = False) -> list:
    """The first ``count`` frames as bgr8 Image (or JPEG CompressedImage) messages."""
    cap = cv2.VideoCapture(str(path))
    msgs = []
    while len(msgs) < count:
        ok, bgr = cap.read()
        if not ok:
            break
        if size is not None:
            bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_LINEAR)
        if compressed:
            msgs.append(CompressedImage(format="jpeg"))
            msgs[-1].data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
        else:
            msgs.append(rgb_to_image(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), encoding="bgr8"))
        msgs[-1].header.frame_id = "camera"
    cap.release()
    if not msgs:
        raise RuntimeError(f"{path}: no frames could be read")
    return msgs


def video_size(path: Path) -> tuple[int, int]:
    """(width, height) of a video file."""
    cap = cv2.VideoCapture(str(path))
    size = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    cap.release()
    return size


class Listener:
    """Receives the node's markers and diagnostics in a background executor."""

    def __init__(self, context, compressed: bool = False) -> None:
        """Subscribe on ``context``; publish Image on ``image`` or JPEG on ``image/compressed``."""
        self.node = rclpy.create_node("bench_listener", context=context)
        self.arrivals: list[tuple[float, float]] = []  # (arrival wall time, source stamp)
        self.diag: dict[str, str] = {}
        self.lock = threading.Lock()
        self.node.create_subscription(MarkerArray, "/recognizer/glimpses", self._markers, 100)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._diag, 10)
        self.image_pub = (self.node.create_publisher(CompressedImage, "image/compressed", 10)
                          if compressed else self.node.create_publisher(Image, "image", 10))
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        threading.Thread(target=self.executor.spin, daemon=True).start()

    def _markers(self, msg: MarkerArray) -> None:
        if msg.markers:
            with self.lock:
                self.arrivals.append((time.time(), stamp_to_float(msg.markers[0].header.stamp)))

    def _diag(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.hardware_id == "/recognizer":
                with self.lock:
                    self.diag = {kv.key: kv.value for kv in status.values}

    def diag_int(self, key: str) -> int:
        """Integer diagnostics value (0 when absent)."""
        with self.lock:
            return int(self.diag.get(key, 0))


def stream(listener: Listener, msgs: list[Image], fps: float, seconds: float) -> int:
    """Publish ``msgs`` in a loop at ``fps`` for ``seconds``; return the number published."""
    period, n = 1.0 / fps, 0
    start = next_t = time.monotonic()
    while time.monotonic() - start < seconds:
        now = time.monotonic()
        if next_t > now:
            time.sleep(next_t - now)
        next_t += period
        msg = msgs[n % len(msgs)]
        msg.header.stamp = listener.node.get_clock().now().to_msg()
        listener.image_pub.publish(msg)
        n += 1
    return n


__all__ = ["Listener", "load_frames", "stream", "video_size"]
