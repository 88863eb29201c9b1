"""Glimpse boxes as a visualization_msgs/MarkerArray (DESIGN §4).

Per glimpse g: a closed LINE_STRIP around its box (namespace ``glimpse_box``, id g) and a SPHERE at
its centre (``glimpse_centre``, id g), both coloured by the glimpse index; one TEXT_VIEW_FACING
marker (``glimpse_label``, id 0) carries the top-1 label above the first box.

Placement:
- with a CameraInfo, in the camera's optical frame (the source image's frame_id): each pixel
  (u, v) is back-projected through the intrinsics K to the plane at ``depth`` metres (x right,
  y down, z forward);
- without one, in an image-plane frame (x right, y down, z = 0) scaled so the image is 1 m wide.

A CameraInfo with non-finite, zero, negative or absurd intrinsics is refused
(:func:`check_camera_info`), and :func:`glimpse_markers` raises rather than return a marker with a
non-finite number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

# One colour per glimpse index (RGB in [0, 255]); the overlay uses the same table.
GLIMPSE_COLOURS: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
    (240, 50, 230), (210, 245, 60))
# Plausible pinhole intrinsics in pixels: a focal length under 1 px would map one pixel to more
# than 45 degrees; 1e7 px is far beyond any lens; principal points lie near the image.
MIN_FOCAL_PX, MAX_FOCAL_PX, MAX_CENTRE_PX = 1.0, 1e7, 1e7


def check_camera_info(info) -> None:
    """Refuse a sensor_msgs/CameraInfo whose K cannot place markers.

    Raises:
        ValueError: naming the entry: fx, fy outside [MIN_FOCAL_PX, MAX_FOCAL_PX] (also NaN,
            Inf, denormal-tiny or zero = uncalibrated), cx, cy non-finite or beyond
            MAX_CENTRE_PX.
    """
    k = list(info.k)
    if len(k) != 9:
        raise ValueError(f"K has {len(k)} entries, expected 9")
    for name, value in (("fx", k[0]), ("fy", k[4])):
        if not MIN_FOCAL_PX <= value <= MAX_FOCAL_PX:  # also rejects NaN
            raise ValueError(f"K {name}={value!r} is not a focal length in "
                             f"[{MIN_FOCAL_PX:g}, {MAX_FOCAL_PX:g}] px (0 = uncalibrated)")
    for name, value in (("cx", k[2]), ("cy", k[5])):
        if not (math.isfinite(value) and abs(value) <= MAX_CENTRE_PX):
            raise ValueError(f"K {name}={value!r} is not a finite principal point within "
                             f"{MAX_CENTRE_PX:g} px")


def glimpse_colour(index: int) -> tuple[int, int, int]:
    """RGB colour of glimpse ``index`` (cycles through GLIMPSE_COLOURS)."""
    return GLIMPSE_COLOURS[index % len(GLIMPSE_COLOURS)]


@dataclass(frozen=True)
class Projection:
    """Maps image pixels to 3D points: ``point = ((u - cx) * s_x, (v - cy) * s_y, z)``."""

    frame_id: str
    cx: float
    cy: float
    sx: float
    sy: float
    z: float
    width_m: float = 1.0  # approximate image width in metres, sizes lines and text

    @classmethod
    def from_camera_info(cls, info, depth: float, frame_id: str = "",
                         image_size: tuple[int, int] | None = None) -> "Projection":
        """Pinhole back-projection at ``depth`` metres using K of a sensor_msgs/CameraInfo.

        ``image_size`` (width, height) of the frames: when it differs from the CameraInfo's
        resolution (e.g. a resized stream), K is scaled to it.
        """
        k = np.asarray(info.k, dtype=np.float64).reshape(3, 3).copy()
        if image_size is not None and info.width > 0 and info.height > 0:
            k[0] *= image_size[0] / info.width  # fx, skew, cx
            k[1] *= image_size[1] / info.height  # fy, cy
            info_width = image_size[0]
        else:
            info_width = int(info.width)
        fx, fy = k[0, 0], k[1, 1]
        if not (np.isfinite(k).all() and fx > 0 and fy > 0):  # also rejects NaN
            raise ValueError(f"CameraInfo K (scaled to the frame) is not usable: fx={fx}, "
                             f"fy={fy}, cx={k[0, 2]}, cy={k[1, 2]}")
        width_px = info_width or 2.0 * float(k[0, 2])
        return cls(frame_id or info.header.frame_id, float(k[0, 2]), float(k[1, 2]),
                   depth / fx, depth / fy, float(depth), width_px * depth / fx)

    @classmethod
    def image_plane(cls, width: int, frame_id: str) -> "Projection":
        """Image-plane frame: origin at the top-left pixel, x right, y down, image 1 m wide."""
        if width <= 0:
            raise ValueError(f"image width must be > 0, got {width}")
        return cls(frame_id, 0.0, 0.0, 1.0 / width, 1.0 / width, 0.0, 1.0)

    def point(self, u: float, v: float) -> Point:
        """3D point of pixel (u, v)."""
        return Point(x=float((u - self.cx) * self.sx), y=float((v - self.cy) * self.sy),
                     z=float(self.z))


def _colour(rgb: tuple[int, int, int], alpha: float = 1.0) -> ColorRGBA:
    return ColorRGBA(r=rgb[0] / 255.0, g=rgb[1] / 255.0, b=rgb[2] / 255.0, a=alpha)


def glimpse_markers(boxes: np.ndarray, label: str, header, projection: Projection,
                    lifetime_s: float = 1.0) -> MarkerArray:
    """Build the markers of one processed frame.

    Args:
        boxes: (G, 4) pixel boxes ``[x0, y0, x1, y1]`` in the source image.
        label: top-1 label text (with probability if wanted).
        header: std_msgs/Header of the source frame; its stamp is copied, its frame_id is replaced
        by
            ``projection.frame_id``.
        projection: where pixels go in 3D (camera frame or image plane).
        lifetime_s: marker lifetime (0 = forever); stale glimpses disappear when frames stop.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape (G, 4), got {boxes.shape}")
    secs = int(lifetime_s)
    lifetime = Duration(sec=secs, nanosec=int(round((lifetime_s - secs) * 1e9)))
    # Line width and sphere size in metres: ~0.4 % and ~1.5 % of the image width.
    line_w, dot = 0.004 * projection.width_m, 0.015 * projection.width_m

    def base(ns: str, mid: int, mtype: int) -> Marker:
        m = Marker()
        m.header.stamp = header.stamp
        m.header.frame_id = projection.frame_id
        m.ns, m.id, m.type, m.action = ns, mid, mtype, Marker.ADD
        m.pose.orientation.w = 1.0
        m.lifetime = lifetime
        return m

    out = MarkerArray()
    for g, (x0, y0, x1, y1) in enumerate(boxes):
        colour = _colour(glimpse_colour(g))
        box = base("glimpse_box", g, Marker.LINE_STRIP)
        box.scale.x = line_w
        box.color = colour
        box.points = [projection.point(u, v) for u, v in
                      ((x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0))]
        out.markers.append(box)
        centre = base("glimpse_centre", g, Marker.SPHERE)
        centre.pose.position = projection.point((x0 + x1) / 2.0, (y0 + y1) / 2.0)
        centre.scale.x = centre.scale.y = centre.scale.z = dot
        centre.color = colour
        out.markers.append(centre)
    text = base("glimpse_label", 0, Marker.TEXT_VIEW_FACING)
    if len(boxes):
        text.pose.position = projection.point(boxes[0, 0], boxes[0, 1])
    text.pose.position.y -= 2.0 * dot  # just above the first box (y points down)
    text.scale.z = 3.0 * dot
    text.color = _colour((255, 255, 255))
    text.text = label
    out.markers.append(text)
    _check_finite(out)
    return out


def _check_finite(markers: MarkerArray) -> None:
    """Raise ValueError when any number of ``markers`` is NaN or infinite."""
    for m in markers.markers:
        p, s = m.pose.position, m.scale
        values = [p.x, p.y, p.z, s.x, s.y, s.z] + [c for q in m.points for c in (q.x, q.y, q.z)]
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"marker {m.ns}/{m.id} has a non-finite coordinate or scale")
