"""Reader and writer for the NTU RGB+D ``.skeleton`` text format (DESIGN §5).

Layout: line 1 = frame count; per frame a body count; per body one line of 10 values (body id,
clipped edges, hand states/confidences, restricted, lean x/y, tracking state), the joint count
(25), then one line of 12 values per joint: ``x y z depthX depthY colorX colorY orientW orientX
orientY orientZ trackingState``. We keep colorX/colorY (pixels of the 1920×1080 RGB video) of the
2 bodies (by body id, over the whole sequence) with the most motion.
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
    Body selection follows the standard NTU practice: bodies are tracked by their body id over
    the whole sequence and the ``max_bodies`` ids with the most motion are kept (see
    :func:`select_bodies`), each in a fixed slot for the whole sequence, so that a third false
    detection or a body that disappears never moves another body into its slot mid-sequence.
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
    # Per body key (body id, rank among equal ids in its frame): {frame: (J, 5) x y z colX colY}.
    tracks: dict[tuple[str, int], dict[int, np.ndarray]] = {}
    for t in range(num_frames):
        num_bodies = take_int(f"body count of frame {t}")
        if num_bodies < 0:
            raise SkeletonFormatError(f"{source}:{pos}: negative body count {num_bodies}")
        seen: dict[str, int] = {}
        for _ in range(num_bodies):
            info = take(f"body info of frame {t}").split()
            if len(info) != 10:
                raise SkeletonFormatError(f"{source}:{pos}: body info line needs 10 values, "
                                          f"got {len(info)}")
            num_joints = take_int(f"joint count of frame {t}")
            if num_joints < 0:
                raise SkeletonFormatError(f"{source}:{pos}: negative joint count {num_joints}")
            values = np.zeros((min(num_joints, NUM_JOINTS), 5), np.float64)
            for j in range(num_joints):
                ln = take(f"joint {j} of frame {t}")
                vals = ln.split()
                if len(vals) != 12:
                    raise SkeletonFormatError(f"{source}:{pos}: joint line needs 12 values, "
                                              f"got {len(vals)}")
                if j < NUM_JOINTS:
                    try:
                        values[j] = [float(vals[k]) for k in (0, 1, 2, 5, 6)]
                    except ValueError as err:
                        raise SkeletonFormatError(f"{source}:{pos}: bad number in {ln!r}") \
                            from err
            key = (info[0], seen.get(info[0], 0))
            seen[info[0]] = key[1] + 1
            if num_joints > 0:
                tracks.setdefault(key, {})[t] = values
    joints = np.zeros((num_frames, max_bodies, NUM_JOINTS, 2), np.float32)
    present = np.zeros((num_frames, max_bodies), bool)
    for slot, key in enumerate(select_bodies(tracks, max_bodies)):
        for t, values in tracks[key].items():
            joints[t, slot, :len(values)] = values[:, 3:5]
            present[t, slot] = True
    return Skeleton(joints, present)


def body_motion(frames: dict[int, np.ndarray], use_xyz: bool) -> float:
    """Motion of one tracked body: the variance of its joints over its frames, summed.

    Args:
        frames: frame index -> ``(J, 5)`` joints ``x y z colorX colorY``.
        use_xyz: measure in camera space (metres, as the NTU reference code does) instead of
            colour-image pixels (used when a file carries no camera-space coordinates).
    """
    coords = np.stack([v[:, :3] if use_xyz else v[:, 3:5] for v in frames.values()])  # (F, J, k)
    return float(coords.var(axis=0).sum())


def select_bodies(tracks: dict[tuple[str, int], dict[int, np.ndarray]], max_bodies: int
                  ) -> list[tuple[str, int]]:
    """Keys of the ``max_bodies`` tracked bodies with the most motion, in order of appearance.

    Ties (e.g. bodies seen in a single frame) keep the file's order. The kept bodies take the
    slots in order of their first frame, so slot assignment is fixed for the whole sequence.
    """
    use_xyz = any(np.any(v[:, :3] != 0) for f in tracks.values() for v in f.values())
    order = list(tracks)                     # dict order = order of first appearance
    ranked = sorted(order, key=lambda k: (-body_motion(tracks[k], use_xyz), order.index(k)))
    kept = set(ranked[:max_bodies])
    return [k for k in order if k in kept]


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
