"""Replay a video file, an image folder or a ROS 2 bag as a camera: image + camera_info.

    python -m glimpse_ros.replay clip.avi --fps 15 --loop  # /image + /camera_info
    python -m glimpse_ros.replay clip.avi --ros-args -r __ns:=/cam1   # /cam1/image, ...
    python -m glimpse_ros.replay my_bag/ --topic /cam/image_raw     # sqlite3 or mcap bag

The node publishes the relative ``image`` and ``camera_info`` in its namespace (the root one
unless given), the names the recognizer listens to by default: started in the same namespace the
two meet. Remap ``image`` and ``camera_info`` together to feed a recognizer elsewhere.

Frames are published on a fixed real-time schedule (the file's frame rate, a bag's mean rate, or
``--fps``). Video and folder frames are stamped with the node clock at publication, like a camera
driver would; bag frames keep their recorded header stamp and frame id (``--restamp`` stamps them
with the clock instead; looping a bag repeats its stamps, which the recognizer treats as a time
jump backwards and resets). A slow reader does not accumulate delay: when behind, the schedule
restarts from now. CameraInfo is the bag's (recorded on the image topic's sibling
``camera_info``) or else a pinhole model built from the horizontal field of view.

Arguments are checked before anything starts (exit 2 naming the argument and its range). Inputs
that cannot be published (unreadable images, bag messages that are not decodable frames, frames
over ``--max-frame-pixels``) are skipped with a warning and counted in the final log line; a run
that publishes nothing, or whose source fails part-way, exits with status 2.
"""

from __future__ import annotations

import argparse
import math
import threading
import time
from typing import Callable

import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, Image

from glimpse_ros.cli_types import add_max_frame_pixels, bounded_float, bounded_int
from glimpse_ros.ros.image_message import rgb_to_image
from glimpse_ros.ros.transport import apply_default_transport
from glimpse_ros.sources import DEFAULT_MAX_PIXELS, BagSource, Frame, FrameSource, open_source

__all__ = ["FrameSource", "ReplayNode", "camera_info", "main"]

#: Horizontal fields of view a pinhole CameraInfo can describe (180 deg: focal length 0).
HFOV_RANGE_DEG = (1.0, 179.0)


def camera_info(width: int, height: int, hfov_deg: float, header) -> CameraInfo:
    """Pinhole CameraInfo (no distortion) with the given horizontal field of view.

    Raises:
        ValueError: ``hfov_deg`` outside :data:`HFOV_RANGE_DEG`, or a size under 1 pixel.
    """
    if not HFOV_RANGE_DEG[0] <= hfov_deg <= HFOV_RANGE_DEG[1] or width < 1 or height < 1:
        raise ValueError(f"a pinhole CameraInfo needs hfov in {HFOV_RANGE_DEG[0]:g}.."
                         f"{HFOV_RANGE_DEG[1]:g} deg and a size >= 1x1, got {hfov_deg} deg, "
                         f"{width}x{height}")
    f = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    info = CameraInfo(header=header, width=width, height=height, distortion_model="plumb_bob")
    info.d = [0.0] * 5
    info.k = [f, 0.0, cx, 0.0, f, cy, 0.0, 0.0, 1.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [f, 0.0, cx, 0.0, 0.0, f, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


def recorded_camera_info(recorded, header) -> CameraInfo:
    """A bag's CameraInfo (rosbags message) as sensor_msgs/CameraInfo with the image's header."""
    info = CameraInfo(header=header, width=int(recorded.width), height=int(recorded.height),
                      distortion_model=str(recorded.distortion_model),
                      binning_x=int(recorded.binning_x), binning_y=int(recorded.binning_y))
    info.d = [float(v) for v in recorded.d]
    info.k = [float(v) for v in recorded.k]
    info.r = [float(v) for v in recorded.r]
    info.p = [float(v) for v in recorded.p]
    roi = recorded.roi
    info.roi.x_offset, info.roi.y_offset = int(roi.x_offset), int(roi.y_offset)
    info.roi.width, info.roi.height = int(roi.width), int(roi.height)
    info.roi.do_rectify = bool(roi.do_rectify)
    return info


class ReplayNode(Node):
    """Publishes a FrameSource on ``image`` and ``camera_info`` from its own pacing thread."""

    def __init__(self, source: FrameSource | BagSource, fps: float | None = None,
                 loop: bool = False,
                 frame_id: str = "camera", encoding: str = "bgr8", hfov_deg: float = 60.0,
                 duration_s: float | None = None, node_name: str = "replay",
                 on_frame: Callable[[np.ndarray, object], None] | None = None,
                 wait_for_subscriber_s: float = 0.0, restamp: bool = False, **kwargs) -> None:
        """Create publishers and start publishing.

        Args:
            source: the frames.
            fps: publication rate; None = the source's rate.
            loop: start again at the end instead of stopping.
            frame_id: header frame id (the camera's optical frame) of frames that carry none
                (a bag's frames keep their own).
            encoding: rgb8 or bgr8 (cameras usually send bgr8).
            hfov_deg: horizontal field of view of the CameraInfo.
            duration_s: stop after this long (None = end of source / never when looping).
            node_name: ROS node name.
            on_frame: called with (rgb, header) for every published frame (demo, benchmark).
            wait_for_subscriber_s: wait up to this long for an ``image`` subscriber before the
                first frame (a camera does not wait; the demo and tests do).
            restamp: stamp bag frames with the node clock instead of their recorded stamps.
            **kwargs: passed to rclpy's Node (e.g. context, namespace; a ``__ns`` remapping
                overrides the namespace).
        """
        super().__init__(node_name, **kwargs)
        self.source = source
        self.fps = float(fps or source.fps)
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"fps must be a finite number > 0, got {fps}")
        if not HFOV_RANGE_DEG[0] <= hfov_deg <= HFOV_RANGE_DEG[1]:
            raise ValueError(f"hfov_deg must be in {HFOV_RANGE_DEG[0]:g}..{HFOV_RANGE_DEG[1]:g}"
                             f", got {hfov_deg}")
        self.loop, self.frame_id, self.encoding = loop, frame_id, encoding
        self.hfov_deg, self.duration_s, self.on_frame = hfov_deg, duration_s, on_frame
        self.wait_for_subscriber_s, self.restamp = wait_for_subscriber_s, restamp
        self.image_pub = self.create_publisher(Image, "image", 10)
        self.info_pub = self.create_publisher(CameraInfo, "camera_info", 10)
        self.published = 0
        self.error = ""  # why the pacing thread stopped early ("" = it did not)
        self.finished = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="replay", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        deadline = time.monotonic() + self.wait_for_subscriber_s
        while self.image_pub.get_subscription_count() == 0 and time.monotonic() < deadline:
            if self._stop.wait(0.02):
                break
        period = 1.0 / self.fps
        start = next_t = time.monotonic()
        try:
            while not self._stop.is_set():
                for frame in self.source.items():
                    now = time.monotonic()
                    if self.duration_s is not None and now - start >= self.duration_s:
                        return
                    if next_t > now:
                        if self._stop.wait(next_t - now):
                            return
                    else:
                        next_t = now  # behind schedule: do not try to catch up with a burst
                    next_t += period
                    self._publish(frame)
                    if self._stop.is_set():
                        return
                if not self.loop or self.published == 0:
                    return
        except Exception as err:  # noqa: BLE001 - a source failing part-way: report, no traceback
            self.error = f"{type(err).__name__}: {err}"
            self.get_logger().error(f"stopped after {self.published} frames: {self.error}")
        finally:
            self.finished.set()

    def _publish(self, frame: Frame) -> None:
        rgb = frame.rgb
        msg = rgb_to_image(rgb, encoding=self.encoding)
        if frame.stamp is not None and not self.restamp:
            msg.header.stamp = Time(seconds=frame.stamp).to_msg()
        else:
            msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = frame.frame_id or self.frame_id
        if frame.camera_info is not None:
            info = recorded_camera_info(frame.camera_info, msg.header)
        else:
            info = camera_info(msg.width, msg.height, self.hfov_deg, msg.header)
        self.info_pub.publish(info)
        self.image_pub.publish(msg)
        self.published += 1
        if self.on_frame is not None:
            self.on_frame(rgb, msg.header)

    def destroy_node(self) -> None:
        """Stop the pacing thread, then destroy the node."""
        if hasattr(self, "_stop"):
            self._stop.set()
            self._thread.join(timeout=5.0)
        super().destroy_node()


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options (ROS arguments already removed)."""
    ap = argparse.ArgumentParser(prog="replay", description=__doc__.split("\n")[0])
    ap.add_argument("path", help="video file, folder of images, or ROS 2 bag (sqlite3 / mcap)")
    ap.add_argument("--topic", default="", help="bag image topic (default: the bag's image "
                    "topic with the most messages)")
    ap.add_argument("--camera-info-topic", default="",
                    help="bag CameraInfo topic (default: the image topic's sibling camera_info)")
    ap.add_argument("--restamp", action="store_true",
                    help="stamp bag frames with the clock instead of their recorded stamps")
    ap.add_argument("--fps", type=bounded_float(0.0, low_open=True), default=None,
                    help="rate, > 0 (default: the file's, a bag's from its header stamps)")
    ap.add_argument("--loop", action="store_true", help="start again at the end")
    ap.add_argument("--frame-id", default="camera", help="header frame_id")
    ap.add_argument("--encoding", default="bgr8", choices=("bgr8", "rgb8"))
    ap.add_argument("--width", type=bounded_int(1), default=None,
                    help="resize frames to this width (>= 1, with --height)")
    ap.add_argument("--height", type=bounded_int(1), default=None,
                    help="resize frames to this height (>= 1, with --width)")
    ap.add_argument("--hfov", type=bounded_float(*HFOV_RANGE_DEG), default=60.0,
                    help=f"horizontal field of view of the pinhole CameraInfo, "
                    f"{HFOV_RANGE_DEG[0]:g}..{HFOV_RANGE_DEG[1]:g} deg (default %(default)s)")
    ap.add_argument("--duration", type=bounded_float(0.0, low_open=True), default=None,
                    help="stop after this many seconds (> 0)")
    ap.add_argument("--wait", type=bounded_float(0.0), default=0.0,
                    help="wait up to this many seconds for a subscriber before starting")
    add_max_frame_pixels(ap, DEFAULT_MAX_PIXELS)
    args = ap.parse_args(argv)
    if (args.width is None) != (args.height is None):
        ap.error("--width and --height go together")
    if args.width and args.width * args.height > args.max_frame_pixels:
        ap.error(f"--width x --height = {args.width * args.height} pixels is over "
                 f"--max-frame-pixels {args.max_frame_pixels}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Console script ``replay``."""
    import sys

    from rclpy.executors import ExternalShutdownException
    from rclpy.utilities import remove_ros_args

    argv = list(sys.argv if argv is None else ["replay", *argv])
    args = parse_args(remove_ros_args(argv)[1:])
    size = (args.width, args.height) if args.width else None
    try:
        source = open_source(args.path, size, args.topic, args.camera_info_topic,
                             args.max_frame_pixels)
    except ValueError as err:
        print(f"replay: {err}", file=sys.stderr)
        return 2
    apply_default_transport()  # the subscriber's process needs a compatible transport
    rclpy.init(args=argv)
    node = ReplayNode(source, args.fps, args.loop, args.frame_id, args.encoding, args.hfov,
                      args.duration, wait_for_subscriber_s=args.wait, restamp=args.restamp)
    node.get_logger().info(f"publishing {source.path} at {node.fps:.1f} fps on "
                           f"{node.resolve_topic_name('image')}")
    interrupted = False
    try:
        while rclpy.ok() and not node.finished.is_set():
            rclpy.spin_once(node, timeout_sec=0.1)
        interrupted = not node.finished.is_set()  # the context was shut down (SIGINT/SIGTERM)
    except (KeyboardInterrupt, ExternalShutdownException):
        interrupted = True
    finally:
        published, error = node.published, node.error
        node.get_logger().info(f"published {published} frames (inputs: "
                               f"{source.rejections.summary()})")
        node.destroy_node()
        rclpy.try_shutdown()
    if error or not (published or interrupted):
        why = error or f"nothing published (inputs: {source.rejections.summary()})"
        print(f"replay: {args.path}: {why}", file=sys.stderr)
        return 2
    return 0
