"""Pinhole projection and OpenCV drawing of a posed body over a cluttered background."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from training.synthetic.body import BONES, J

# Fixed, distinct colours (RGB) per limb so left/right and upper/lower parts are separable.
PART_COLOURS = {
    "upper_arm_left": (230, 40, 40), "forearm_left": (255, 150, 0), "hand_left": (255, 230, 0),
    "upper_arm_right": (30, 60, 230), "forearm_right": (0, 200, 255),
    "hand_right": (160, 255, 255),
    "thigh_left": (40, 170, 40), "shin_left": (140, 230, 60), "foot_left": (90, 90, 20),
    "thigh_right": (170, 40, 170), "shin_right": (255, 110, 220), "foot_right": (90, 20, 90),
}
HEAD_COLOUR = (240, 200, 160)


@dataclass(frozen=True)
class Camera:
    """Pinhole camera looking horizontally at the subject.

    Attributes:
        yaw: rotation of the subject about the vertical axis (radians, 0 = facing the camera).
        distance: metres from the camera to the subject's origin.
        height: camera height above the floor (metres).
        focal: focal length in pixels.
        offset_x: lateral offset of the subject (metres, + = image right).
        size: (width, height) of the image in pixels.
    """

    yaw: float
    distance: float
    height: float
    focal: float
    offset_x: float
    size: tuple[int, int]

    def project(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project (N, 3) body-frame points; return (N, 2) pixels and (N, 3) camera coordinates."""
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        x = c * pts[:, 0] + s * pts[:, 2]
        z = -s * pts[:, 0] + c * pts[:, 2]
        # Facing the camera, the subject's left (+x) appears on the image right and its forward
        # direction (+z) points at the camera.
        cam = np.stack([x + self.offset_x, self.height - pts[:, 1], self.distance - z], axis=1)
        w, h = self.size
        u = self.focal * cam[:, 0] / cam[:, 2] + (w - 1) / 2.0
        v = self.focal * cam[:, 1] / cam[:, 2] + (h - 1) / 2.0
        return np.stack([u, v], axis=1), cam


def _muted(rng: np.random.Generator) -> tuple[int, int, int]:
    """A random low-saturation colour (grey plus a small tint).

    The figure's limbs are saturated; keeping the clutter muted leaves the limbs separable by
    colour while the background stays busy (shapes, edges, lines).
    """
    grey = rng.uniform(40, 215)
    tint = rng.uniform(-35, 35, 3)
    return tuple(int(v) for v in np.clip(grey + tint, 0, 255))


def make_background(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A cluttered static background: gradient, rectangles, ellipses and lines (RGB uint8)."""
    w, h = size
    top, bottom = np.array(_muted(rng)), np.array(_muted(rng))
    ramp = np.linspace(0.0, 1.0, h)[:, None, None]
    img = (top * (1 - ramp) + bottom * ramp) * np.ones((1, w, 1))
    img = np.ascontiguousarray(img.astype(np.uint8))
    for _ in range(int(rng.integers(8, 20))):
        colour = _muted(rng)
        kind = rng.integers(0, 3)
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        if kind == 0:
            x1, y1 = x0 + int(rng.integers(5, w // 3)), y0 + int(rng.integers(5, h // 3))
            cv2.rectangle(img, (x0, y0), (x1, y1), colour, -1)
        elif kind == 1:
            axes = (int(rng.integers(3, w // 8)), int(rng.integers(3, h // 8)))
            cv2.ellipse(img, (x0, y0), axes, float(rng.uniform(0, 180)), 0, 360, colour, -1)
        else:
            x1, y1 = int(rng.integers(0, w)), int(rng.integers(0, h))
            cv2.line(img, (x0, y0), (x1, y1), colour, 1)
    return img


def draw_body(img: np.ndarray, joints_px: np.ndarray, cam_xyz: np.ndarray, torso_colour: tuple,
              thickness_m: float, focal: float) -> None:
    """Draw thick limbs (far ones first) and the head onto ``img`` in place."""
    items = []
    for a, b, part in BONES:
        ia, ib = J[a], J[b]
        depth = 0.5 * (cam_xyz[ia, 2] + cam_xyz[ib, 2])
        colour = torso_colour if part == "torso" else PART_COLOURS[part]
        scale = 1.6 if part == "torso" else (0.7 if part.startswith(("hand", "foot")) else 1.0)
        items.append((depth, joints_px[ia], joints_px[ib], colour, scale))
    head = J["Head"]
    items.append((cam_xyz[head, 2], joints_px[head], None, HEAD_COLOUR, 0.0))
    for depth, pa, pb, colour, scale in sorted(items, key=lambda it: -it[0]):
        px_per_m = focal / max(depth, 0.3)
        if pb is None:
            r = max(2, int(round(0.11 * px_per_m)))
            cv2.circle(img, (int(round(pa[0])), int(round(pa[1]))), r, colour, -1, cv2.LINE_AA)
            continue
        t = max(2, int(round(thickness_m * scale * px_per_m)))
        cv2.line(img, (int(round(pa[0])), int(round(pa[1]))),
                 (int(round(pb[0])), int(round(pb[1]))), colour, t, cv2.LINE_AA)
