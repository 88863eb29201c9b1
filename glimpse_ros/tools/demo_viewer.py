"""The demo's viewer: prints labels with their latency, writes the overlay video (one process).

Subscribed in the demo's executor to the recognizer's ``~/glimpses`` and ``~/overlay``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from sensor_msgs.msg import Image
from visualization_msgs.msg import MarkerArray

from glimpse_ros.ros.inference import stamp_to_float
from glimpse_ros.sources.image_decoding import image_to_rgb

MIN_OUTPUT_WIDTH = 480  # overlay.mp4 / annotated.png are enlarged to at least this width


@dataclass
class Viewer:
    """Collects overlays and markers of the recognizer, prints labels with their latency."""

    fps: float
    out_video: Path
    truth: dict[float, str] = field(default_factory=dict)
    labels: list[tuple[float, str, float]] = field(default_factory=list)  # stamp, text, latency
    overlays: dict[float, np.ndarray] = field(default_factory=dict)
    writer: cv2.VideoWriter | None = None
    last_print: float = 0.0
    last_text: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_markers(self, msg: MarkerArray) -> None:
        """Print the label of a processed frame (on change, else twice a second)."""
        text = next((m.text for m in msg.markers if m.ns == "glimpse_label"), "")
        stamp = stamp_to_float(msg.markers[0].header.stamp) if msg.markers else 0.0
        latency = time.time() - stamp
        with self.lock:
            self.labels.append((stamp, text, latency))
            now = time.monotonic()
            if text.split(" (")[0] != self.last_text.split(" (")[0] or now - self.last_print > 0.5:
                truth = self.truth.get(stamp)
                extra = f"  [truth: {truth}]" if truth else ""
                print(f"{len(self.labels):5d}  {text:28s} latency {latency * 1e3:7.1f} ms{extra}",
                      flush=True)
                self.last_print, self.last_text = now, text

    def on_overlay(self, msg: Image) -> None:
        """Append an overlay frame to the video; keep it for the annotated PNG."""
        rgb = image_to_rgb(msg)
        # Small frames (the demo model's 160x120) are enlarged for viewing, pixels kept sharp.
        factor = -(-MIN_OUTPUT_WIDTH // rgb.shape[1])
        if factor > 1:
            rgb = cv2.resize(rgb, (rgb.shape[1] * factor, rgb.shape[0] * factor),
                             interpolation=cv2.INTER_NEAREST)
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        with self.lock:
            if self.writer is None:
                self.writer = cv2.VideoWriter(str(self.out_video), cv2.VideoWriter_fourcc(*"mp4v"),
                                              self.fps, (rgb.shape[1], rgb.shape[0]))
            self.writer.write(bgr)
            self.overlays[stamp_to_float(msg.header.stamp)] = rgb

    def close(self) -> None:
        """Finish the video file."""
        with self.lock:
            if self.writer is not None:
                self.writer.release()


__all__ = ["MIN_OUTPUT_WIDTH", "Viewer"]
