"""Sampling of synthetic video specifications and writing them as NTU-format files.

Every video ``i`` is drawn from its own generator seeded by ``(seed, i)``, and every subject's body
from ``(seed, subject)``, so a video does not depend on how many others are generated.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from training.ntu.names import SampleName
from training.ntu.skeleton import format_skeleton
from training.synthetic.actions import ACTION_NAMES, action_pose
from training.synthetic.body import BodyShape, pose_joints
from training.synthetic.renderer import Camera, draw_body, make_background

NUM_SUBJECTS = 40
# NTU-like camera placement: camera 1 in front, cameras 2 and 3 at -45 and +45 degrees.
CAMERA_YAW = {1: 0.0, 2: -np.pi / 4, 3: np.pi / 4}


@dataclass(frozen=True)
class VideoSpec:
    """Everything needed to render one video."""

    name: SampleName
    frames: int
    period: float          # frames per action repetition
    phase0: float
    shape: BodyShape
    torso_colour: tuple[int, int, int]
    thickness: float       # limb thickness in metres
    camera: Camera
    idle: np.ndarray       # (6,) see actions.action_pose
    bg_seed: int
    skeleton_missing: bool


def subject_body(seed: int, subject: int) -> tuple[BodyShape, tuple[int, int, int], float]:
    """Deterministic proportions, shirt colour and limb thickness of ``subject``."""
    rng = np.random.default_rng([seed, 1_000_000 + subject])
    shape = BodyShape(height=float(rng.uniform(0.85, 1.12)),
                      upper_arm=float(rng.uniform(0.26, 0.32)),
                      forearm=float(rng.uniform(0.23, 0.29)),
                      thigh=float(rng.uniform(0.40, 0.47)), shin=float(rng.uniform(0.39, 0.45)),
                      shoulder_half=float(rng.uniform(0.16, 0.22)),
                      torso=float(rng.uniform(0.40, 0.50)))
    colour = tuple(int(v) for v in rng.integers(30, 226, 3))
    return shape, colour, float(rng.uniform(0.07, 0.10))


def draw_name(seed: int, index: int, taken: set[str] | None = None
              ) -> tuple[SampleName, np.random.Generator]:
    """Draw the NTU name of video ``index`` (its action cycles through the classes).

    ``taken`` holds the names of earlier videos: a draw whose name is already used is redrawn
    (from a generator seeded by ``(seed, index, attempt)``) so that no file overwrites another.

    Returns:
        the name and the video's generator, positioned after the name draws.
    """
    action = index % len(ACTION_NAMES) + 1
    for attempt in range(1000):
        rng = np.random.default_rng([seed, index] + ([attempt] if attempt else []))
        subject = int(rng.integers(1, NUM_SUBJECTS + 1))
        cam_id = int(rng.integers(1, 4))
        setup = int(rng.integers(1, 18))
        name = SampleName(setup=setup, camera=cam_id, subject=subject,
                          replication=int(rng.integers(1, 3)), action=action)
        if taken is None or name.stem not in taken:
            return name, rng
    raise ValueError(f"no free sample name for video {index}: too many videos per action")


def sample_spec(seed: int, index: int, size: tuple[int, int], frames: int,
                missing_prob: float, taken: set[str] | None = None) -> VideoSpec:
    """Draw the specification of video ``index``; classes cycle so counts stay balanced.

    ``taken``: names of earlier videos (see :func:`draw_name`).
    """
    name, rng = draw_name(seed, index, taken)
    cam_id, subject = name.camera, name.subject
    shape, colour, thick = subject_body(seed, subject)
    w, h = size
    distance = float(rng.uniform(2.8, 3.6))
    camera = Camera(yaw=CAMERA_YAW[cam_id] + float(rng.uniform(-0.15, 0.15)), distance=distance,
                    height=float(rng.uniform(0.9, 1.1)), focal=float(rng.uniform(1.25, 1.45)) * h,
                    offset_x=float(rng.uniform(-0.35, 0.35)), size=size)
    idle = np.concatenate([rng.uniform(-0.1, 0.25, 2), rng.uniform(-0.2, 0.5, 2),
                           rng.uniform(0.0, 0.25, 1), rng.uniform(0.0, 1.0, 1)])
    return VideoSpec(name=name, frames=frames, period=float(rng.uniform(12.0, 20.0)),
                     phase0=float(rng.uniform(0.0, 1.0)), shape=shape, torso_colour=colour,
                     thickness=thick, camera=camera, idle=idle,
                     bg_seed=int(rng.integers(0, 2**31 - 1)),
                     skeleton_missing=bool(rng.uniform() < missing_prob))


def render(spec: VideoSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render a video.

    Returns:
        frames (T, H, W, 3) uint8 RGB, joints (T, 25, 2) colour pixels, xyz (T, 25, 3) camera
        metres.
    """
    bg_rng = np.random.default_rng(spec.bg_seed)
    background = make_background(bg_rng, spec.camera.size)
    noise_rng = np.random.default_rng(spec.bg_seed + 1)
    frames, joints, xyz = [], [], []
    for t in range(spec.frames):
        phase = spec.phase0 + t / spec.period
        angles = action_pose(spec.name.action - 1, phase, spec.idle)
        pts = pose_joints(spec.shape, angles)                  # (25, 3) body frame
        px, cam = spec.camera.project(pts)                      # (25, 2), (25, 3)
        img = background.copy()
        draw_body(img, px, cam, spec.torso_colour, spec.thickness, spec.camera.focal)
        noise = noise_rng.integers(-3, 4, img.shape, dtype=np.int16)
        img = np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8)
        frames.append(img)
        joints.append(px)
        xyz.append(cam)
    return np.stack(frames), np.stack(joints), np.stack(xyz)


def write_video(path: Path, frames: np.ndarray, fps: float = 30.0) -> None:
    """Write RGB frames as an MJPG ``.avi`` and check that OpenCV can decode it back."""
    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"{path}: OpenCV cannot open an MJPG writer")
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    cap = cv2.VideoCapture(str(path))
    ok, _ = cap.read()
    cap.release()
    if not ok:
        raise RuntimeError(f"{path}: written video does not decode")


def write_sample(out: Path, spec: VideoSpec) -> SampleName:
    """Render ``spec`` and write its ``_rgb.avi`` and ``.skeleton`` files into ``out``."""
    frames, joints, xyz = render(spec)
    write_video(out / spec.name.video_name, frames)
    if spec.skeleton_missing:
        text = ""          # NTU ships some empty skeleton files; the loader must mask them
    else:
        text = format_skeleton([[j] for j in joints], [[p] for p in xyz])
    (out / spec.name.skeleton_name).write_text(text)
    return spec.name
