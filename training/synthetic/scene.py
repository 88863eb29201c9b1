"""The ``distractor`` scene: a small actor decides the class while a second figure moves elsewhere.

Every video holds two figures over a cluttered background in which a few shapes drift:

- the *actor* (white shirt, a synthetic subject: body proportions from its subject id, so the
  cross-subject split holds) performs the labelled action; it is small (28-38 % of the frame
  height) and at a random position;
- the *distractor* (another shirt colour, random proportions, 1.0-1.5x the actor's size, so it
  usually fills more of the frame) performs a random *other* action, next to the actor without
  overlapping it.

Both figures use the same limb colours, so a globally pooled feature sees two actions and must
tell them apart by which figure they belong to. The ``.skeleton`` file holds the actor alone as
body 0, as NTU's files hold the performing subject(s): the pose loss (L_P) and the glimpse
attraction (L_G) see the actor's joints only. The distractor's joints are written next to it in
``<name>.distractor.npz`` (``joints`` (T, 25, 2) colour pixels, ``action`` 1-based) for analyses
such as where the glimpses land; the training loaders do not read that file.
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
from training.synthetic.generator import CAMERA_YAW, draw_name, subject_body, write_video
from training.synthetic.renderer import Camera, _muted, draw_body, make_background

ACTOR_COLOUR = (245, 245, 245)      # the actor's shirt: the cue that tells it from the distractor
STAND_HEIGHT_M = 1.75               # nominal standing height (metres at BodyShape.height = 1)
DISTANCE_M = 3.2                    # camera distance used for the perspective of each figure


@dataclass(frozen=True)
class Figure:
    """One posed, placed figure of a scene.

    Attributes:
        action: 1-based action index into :data:`ACTION_NAMES`.
        shape: body proportions.
        colour: shirt (torso) colour, RGB.
        thickness: limb thickness in metres.
        yaw: rotation about the vertical axis (0 = facing the camera).
        height_px: standing height in pixels.
        feet_xy: image position (pixels) of the point between the feet.
        period: frames per action repetition.
        phase0: phase at frame 0.
        idle: (6,) resting-posture offsets (see ``actions.action_pose``).
    """

    action: int
    shape: BodyShape
    colour: tuple[int, int, int]
    thickness: float
    yaw: float
    height_px: float
    feet_xy: tuple[float, float]
    period: float
    phase0: float
    idle: np.ndarray

    def camera(self, size: tuple[int, int]) -> Camera:
        """A pinhole camera whose focal length gives the figure ``height_px`` pixels."""
        focal = self.height_px * DISTANCE_M / (STAND_HEIGHT_M * self.shape.height)
        return Camera(yaw=self.yaw, distance=DISTANCE_M, height=1.0, focal=focal, offset_x=0.0,
                      size=size)

    def project(self, t: int, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, float]:
        """Joints at frame ``t``: (25, 2) pixels, (25, 3) camera metres, and the focal length."""
        angles = action_pose(self.action - 1, self.phase0 + t / self.period, self.idle)
        cam = self.camera(size)
        px, xyz = cam.project(pose_joints(self.shape, angles))         # (25, 2), (25, 3)
        floor, _ = cam.project(np.zeros((1, 3)))                        # (1, 2) between the feet
        return px + (np.asarray(self.feet_xy) - floor[0]), xyz, cam.focal


@dataclass(frozen=True)
class SceneSpec:
    """Everything needed to render one distractor-scene video."""

    name: SampleName
    frames: int
    size: tuple[int, int]
    actor: Figure
    distractor: Figure
    movers: np.ndarray          # (M, 7): x, y, vx, vy, half-width, half-height, kind
    mover_colours: np.ndarray   # (M, 3) RGB
    bg_seed: int
    skeleton_missing: bool


def _idle(rng: np.random.Generator) -> np.ndarray:
    """Resting-posture offsets, drawn as the single-figure generator draws them."""
    return np.concatenate([rng.uniform(-0.1, 0.25, 2), rng.uniform(-0.2, 0.5, 2),
                           rng.uniform(0.0, 0.25, 1), rng.uniform(0.0, 1.0, 1)])


def _place(rng: np.random.Generator, size: tuple[int, int], h_actor: float, h_other: float
           ) -> tuple[tuple[float, float], tuple[float, float]]:
    """Feet positions of two figures side by side, each about 0.5 x its height wide, apart."""
    w, h = size
    for _ in range(200):
        xs = rng.uniform(0.3 * np.array([h_actor, h_other]), w - 0.3 * np.array([h_actor,
                                                                                 h_other]))
        if abs(xs[0] - xs[1]) >= 0.55 * (h_actor + h_other):
            break
    else:
        raise ValueError(f"frame {size} too narrow for figures of {h_actor:.0f} and "
                         f"{h_other:.0f} px side by side")
    ys = [rng.uniform(min(fh + 0.06 * h, 0.96 * h), 0.96 * h) for fh in (h_actor, h_other)]
    return (float(xs[0]), float(ys[0])), (float(xs[1]), float(ys[1]))


def sample_scene(seed: int, index: int, size: tuple[int, int], frames: int,
                 missing_prob: float, taken: set[str] | None = None) -> SceneSpec:
    """Draw the specification of distractor-scene video ``index`` (classes cycle, balanced).

    Deterministic in ``(seed, index)``; ``taken`` as in ``generator.draw_name``.
    """
    name, rng = draw_name(seed, index, taken)
    shape, _, thick = subject_body(seed, name.subject)
    w, h = size
    h_actor = float(rng.uniform(0.28, 0.38)) * h
    h_other = min(h_actor * float(rng.uniform(1.0, 1.5)), 0.6 * h)
    feet_actor, feet_other = _place(rng, size, h_actor, h_other)
    actor = Figure(action=name.action, shape=shape, colour=ACTOR_COLOUR, thickness=thick,
                   yaw=CAMERA_YAW[name.camera] + float(rng.uniform(-0.15, 0.15)),
                   height_px=h_actor, feet_xy=feet_actor, period=float(rng.uniform(12.0, 20.0)),
                   phase0=float(rng.uniform(0.0, 1.0)), idle=_idle(rng))
    others = [a for a in range(1, len(ACTION_NAMES) + 1) if a != name.action]
    other_shape = BodyShape(height=float(rng.uniform(0.85, 1.12)),
                            upper_arm=float(rng.uniform(0.26, 0.32)),
                            forearm=float(rng.uniform(0.23, 0.29)),
                            thigh=float(rng.uniform(0.40, 0.47)),
                            shin=float(rng.uniform(0.39, 0.45)),
                            shoulder_half=float(rng.uniform(0.16, 0.22)),
                            torso=float(rng.uniform(0.40, 0.50)))
    # Any shirt but a near-white one (the actor's cue).
    colour = tuple(int(v) for v in rng.integers(30, 200, 3))
    distractor = Figure(action=int(rng.choice(others)), shape=other_shape, colour=colour,
                        thickness=float(rng.uniform(0.07, 0.10)),
                        yaw=float(rng.uniform(-np.pi / 3, np.pi / 3)), height_px=h_other,
                        feet_xy=feet_other, period=float(rng.uniform(12.0, 20.0)),
                        phase0=float(rng.uniform(0.0, 1.0)), idle=_idle(rng))
    m = int(rng.integers(2, 5))
    speed = rng.uniform(0.6, 2.5, m) * rng.choice([-1.0, 1.0], m)
    movers = np.stack([rng.uniform(0, w, m), rng.uniform(0, h, m), speed,
                       rng.uniform(-0.5, 0.5, m), rng.uniform(0.04, 0.12, m) * w,
                       rng.uniform(0.04, 0.12, m) * h, rng.integers(0, 2, m)], axis=1)
    mover_colours = np.array([_muted(rng) for _ in range(m)], dtype=np.int64)
    return SceneSpec(name=name, frames=frames, size=size, actor=actor, distractor=distractor,
                     movers=movers, mover_colours=mover_colours,
                     bg_seed=int(rng.integers(0, 2**31 - 1)),
                     skeleton_missing=bool(rng.uniform() < missing_prob))


def _draw_movers(img: np.ndarray, spec: SceneSpec, t: int) -> None:
    """Draw the drifting background shapes at frame ``t`` (wrapping around the frame)."""
    w, h = spec.size
    for (x, y, vx, vy, hw, hh, kind), colour in zip(spec.movers, spec.mover_colours):
        cx = int(round((x + vx * t) % (w + 2 * hw) - hw))
        cy = int(round((y + vy * t) % (h + 2 * hh) - hh))
        col = tuple(int(c) for c in colour)
        if kind == 0:
            cv2.rectangle(img, (int(cx - hw), int(cy - hh)), (int(cx + hw), int(cy + hh)), col, -1)
        else:
            cv2.ellipse(img, (cx, cy), (int(hw), int(hh)), 0.0, 0, 360, col, -1)


def render_scene(spec: SceneSpec) -> dict[str, np.ndarray]:
    """Render a video.

    Returns:
        ``frames`` (T, H, W, 3) uint8 RGB, ``actor`` (T, 25, 2) and ``distractor`` (T, 25, 2)
        colour pixels, ``actor_xyz`` (T, 25, 3) camera metres.
    """
    background = make_background(np.random.default_rng(spec.bg_seed), spec.size)
    noise_rng = np.random.default_rng(spec.bg_seed + 1)
    out: dict[str, list] = dict(frames=[], actor=[], distractor=[], actor_xyz=[])
    for t in range(spec.frames):
        img = background.copy()
        _draw_movers(img, spec, t)
        posed = []
        for fig in (spec.actor, spec.distractor):
            px, xyz, focal = fig.project(t, spec.size)
            posed.append((fig, px, xyz, focal))
        # The larger (nearer) figure is drawn last, over the smaller one.
        for fig, px, xyz, focal in sorted(posed, key=lambda p: p[0].height_px):
            draw_body(img, px, xyz, fig.colour, fig.thickness, focal)
        noise = noise_rng.integers(-3, 4, img.shape, dtype=np.int16)
        out["frames"].append(np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8))
        out["actor"].append(posed[0][1])
        out["actor_xyz"].append(posed[0][2])
        out["distractor"].append(posed[1][1])
    return {k: np.stack(v) for k, v in out.items()}


def distractor_path(folder: Path, name: SampleName | str) -> Path:
    """Where the distractor joints of sample ``name`` are stored."""
    stem = name if isinstance(name, str) else name.stem
    return Path(folder) / f"{stem}.distractor.npz"


def write_scene(out: Path, spec: SceneSpec) -> SampleName:
    """Render ``spec``; write ``_rgb.avi``, ``.skeleton`` (actor = body 0) and the sidecar."""
    r = render_scene(spec)
    write_video(out / spec.name.video_name, r["frames"])
    text = "" if spec.skeleton_missing else format_skeleton(
        [[j] for j in r["actor"]], [[p] for p in r["actor_xyz"]])
    (out / spec.name.skeleton_name).write_text(text)
    np.savez(distractor_path(out, spec.name), joints=r["distractor"].astype(np.float32),
             action=np.int64(spec.distractor.action))
    return spec.name
