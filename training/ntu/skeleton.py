"""Reader and writer for the NTU RGB+D ``.skeleton`` text format (DESIGN §5).

Layout: line 1 = frame count; per frame a body count; per body one line of 10 values (body id,
clipped edges, hand states/confidences, restricted, lean x/y, tracking state), the joint count
(25), then one line of 12 values per joint: ``x y z depthX depthY colorX colorY orientW orientX
orientY orientZ trackingState``. We keep colorX/colorY (pixels of the 1920×1080 RGB video) of up
to 2 bodies.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

NUM_JOINTS = 25
MAX_BODIES = 2


@dataclass
class Skeleton:
    """2D joints of one sample.

    Attributes:
        joints: (T, MAX_BODIES, J, 2) float32 colour-image pixel coordinates (x, y); 0 where
            absent.
        present: (T, MAX_BODIES) bool, True where that body slot holds a tracked body.
    """

    joints: np.ndarray
    present: np.ndarray

    @property
    def num_frames(self) -> int:
        """Number of frames described by the file."""
        return int(self.joints.shape[0])


class SkeletonFormatError(ValueError):
    """A ``.skeleton`` file is truncated or malformed."""


def parse_skeleton_text(text: str, source: str = "<text>", max_bodies: int = MAX_BODIES
                        ) -> Skeleton:
    """Parse the contents of a ``.skeleton`` file.

    An empty file yields zero frames (the NTU release contains such files); a truncated or
    malformed one raises :class:`SkeletonFormatError` naming ``source`` and the line.
    Bodies beyond ``max_bodies`` are ignored (NTU has at most two actors; extra Kinect detections
    are noise). Body order is kept as in the file.
    """
    lines = text.split("\n")
    lines = [ln.strip() for ln in lines]
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        return Skeleton(np.zeros((0, max_bodies, NUM_JOINTS, 2), np.float32),
                        np.zeros((0, max_bodies), bool))
    pos = 0

    def take(what: str) -> str:
        nonlocal pos
        if pos >= len(lines):
            raise SkeletonFormatError(f"{source}: truncated, expected {what} at line {pos + 1}")
        ln = lines[pos]
        pos += 1
        return ln

    def take_int(what: str) -> int:
        ln = take(what)
        try:
            return int(ln.split()[0])
        except (ValueError, IndexError) as err:
            raise SkeletonFormatError(f"{source}:{pos}: expected {what}, got {ln!r}") from err

    num_frames = take_int("frame count")
    if num_frames < 0:
        raise SkeletonFormatError(f"{source}:1: negative frame count {num_frames}")
    joints = np.zeros((num_frames, max_bodies, NUM_JOINTS, 2), np.float32)
    present = np.zeros((num_frames, max_bodies), bool)
    for t in range(num_frames):
        num_bodies = take_int(f"body count of frame {t}")
        if num_bodies < 0:
            raise SkeletonFormatError(f"{source}:{pos}: negative body count {num_bodies}")
        for b in range(num_bodies):
            info = take(f"body info of frame {t}").split()
            if len(info) != 10:
                raise SkeletonFormatError(f"{source}:{pos}: body info line needs 10 values, "
                                          f"got {len(info)}")
            num_joints = take_int(f"joint count of frame {t}")
            if num_joints < 0:
                raise SkeletonFormatError(f"{source}:{pos}: negative joint count {num_joints}")
            for j in range(num_joints):
                ln = take(f"joint {j} of frame {t}")
                vals = ln.split()
                if len(vals) != 12:
                    raise SkeletonFormatError(f"{source}:{pos}: joint line needs 12 values, "
                                              f"got {len(vals)}")
                if b < max_bodies and j < NUM_JOINTS:
                    try:
                        joints[t, b, j] = (float(vals[5]), float(vals[6]))
                    except ValueError as err:
                        raise SkeletonFormatError(f"{source}:{pos}: bad number in {ln!r}") \
                            from err
            if b < max_bodies and num_joints > 0:
                present[t, b] = True
    return Skeleton(joints, present)


def read_skeleton(path: str | Path, max_bodies: int = MAX_BODIES) -> Skeleton:
    """Read a ``.skeleton`` file (see :func:`parse_skeleton_text`)."""
    path = Path(path)
    try:
        text = path.read_text(errors="strict")
    except (OSError, UnicodeDecodeError) as err:
        raise SkeletonFormatError(f"{path}: cannot read: {err}") from err
    return parse_skeleton_text(text, source=str(path), max_bodies=max_bodies)


def format_skeleton(color_xy: list[list[np.ndarray]], xyz: list[list[np.ndarray]] | None = None,
                    body_ids: list[list[int]] | None = None) -> str:
    """Write frames in the NTU text format.

    Args:
        color_xy: per frame a list of bodies, each a (25, 2) array of colour pixel coordinates.
        xyz: optional matching (25, 3) camera-space coordinates in metres (zeros when omitted).
        body_ids: optional per-frame body tracking ids.
    """
    out = [str(len(color_xy))]
    for t, bodies in enumerate(color_xy):
        out.append(str(len(bodies)))
        for b, xy in enumerate(bodies):
            bid = body_ids[t][b] if body_ids is not None else 72057594037930000 + b
            # body info: id, clippedEdges, handLeftConfidence, handLeftState, handRightConfidence,
            # handRightState, isRestricted, leanX, leanY, trackingState
            out.append(f"{bid} 0 1 1 1 1 0 0.0 0.0 2")
            out.append(str(NUM_JOINTS))
            p3 = xyz[t][b] if xyz is not None else np.zeros((NUM_JOINTS, 3))
            for j in range(NUM_JOINTS):
                x, y, z = (float(v) for v in p3[j])
                cx, cy = float(xy[j, 0]), float(xy[j, 1])
                # depthX/depthY: the 512x424 depth image; approximated by scaling colour coords.
                dx, dy = cx * 512.0 / 1920.0, cy * 424.0 / 1080.0
                out.append(f"{x:.7f} {y:.7f} {z:.7f} {dx:.5f} {dy:.5f} {cx:.4f} {cy:.4f} "
                           f"0 0 0 0 2")
    return "\n".join(out) + "\n"
