"""A 25-joint articulated body in the Kinect v2 joint order, posed by a few angles.

Body frame: +x = the subject's left, +y = up, +z = the direction the subject faces; metres; the
spine base sits at height ``hip_height`` above the floor (y = 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Kinect v2 joint order (as in NTU RGB+D), 0-based.
JOINT_NAMES = (
    "SpineBase", "SpineMid", "Neck", "Head", "ShoulderLeft", "ElbowLeft", "WristLeft", "HandLeft",
    "ShoulderRight", "ElbowRight", "WristRight", "HandRight", "HipLeft", "KneeLeft", "AnkleLeft",
    "FootLeft", "HipRight", "KneeRight", "AnkleRight", "FootRight", "SpineShoulder", "HandTipLeft",
    "ThumbLeft", "HandTipRight", "ThumbRight")
J = {name: i for i, name in enumerate(JOINT_NAMES)}

# Drawn segments (parent, child) with a part name used to pick the colour.
BONES = (
    ("SpineBase", "SpineMid", "torso"), ("SpineMid", "SpineShoulder", "torso"),
    ("SpineShoulder", "Neck", "torso"), ("SpineShoulder", "ShoulderLeft", "torso"),
    ("SpineShoulder", "ShoulderRight", "torso"), ("SpineBase", "HipLeft", "torso"),
    ("SpineBase", "HipRight", "torso"),
    ("ShoulderLeft", "ElbowLeft", "upper_arm_left"), ("ElbowLeft", "WristLeft", "forearm_left"),
    ("WristLeft", "HandTipLeft", "hand_left"),
    ("ShoulderRight", "ElbowRight", "upper_arm_right"),
    ("ElbowRight", "WristRight", "forearm_right"), ("WristRight", "HandTipRight", "hand_right"),
    ("HipLeft", "KneeLeft", "thigh_left"), ("KneeLeft", "AnkleLeft", "shin_left"),
    ("AnkleLeft", "FootLeft", "foot_left"),
    ("HipRight", "KneeRight", "thigh_right"), ("KneeRight", "AnkleRight", "shin_right"),
    ("AnkleRight", "FootRight", "foot_right"),
)


@dataclass(frozen=True)
class BodyShape:
    """Per-subject proportions (metres)."""

    height: float = 1.0          # global scale factor
    upper_arm: float = 0.29
    forearm: float = 0.26
    thigh: float = 0.43
    shin: float = 0.42
    shoulder_half: float = 0.19
    hip_half: float = 0.10
    torso: float = 0.45


@dataclass
class PoseAngles:
    """Angles (radians) that pose the body; elevation 0 = limb hanging down, pi = straight up.

    Arm azimuth: 0 = out to the side, pi/2 = forward, > pi/2 = across the body.
    Leg: positive swing = forward. ``bend`` tilts the trunk forward about the spine base,
    ``nod`` the head forward about the neck; ``lift`` raises the whole body (jump).
    """

    arm_el: tuple[float, float] = (0.15, 0.15)        # upper arm elevation (left, right)
    arm_az: tuple[float, float] = (0.3, 0.3)
    fore_el: tuple[float, float] = (0.3, 0.3)         # forearm elevation
    fore_az: tuple[float, float] = (1.2, 1.2)
    thigh: tuple[float, float] = (0.0, 0.0)           # thigh swing (left, right)
    knee: tuple[float, float] = (0.0, 0.0)            # knee flexion
    bend: float = 0.0
    nod: float = 0.0
    lift: float = 0.0


def _arm_dir(side: float, el: float, az: float) -> np.ndarray:
    """Unit vector of a limb segment; ``side`` +1 for left, -1 for right."""
    return np.array([side * np.sin(el) * np.cos(az), -np.cos(el), np.sin(el) * np.sin(az)])


def _leg_dir(swing: float) -> np.ndarray:
    """Unit vector of a leg segment swung forward by ``swing``."""
    return np.array([0.0, -np.cos(swing), np.sin(swing)])


def pose_joints(shape: BodyShape, a: PoseAngles) -> np.ndarray:
    """Return (25, 3) joint positions in the body frame for the given angles."""
    s = shape
    p = np.zeros((25, 3))
    knee_avg = 0.5 * (a.knee[0] + a.knee[1])
    # Crouching shortens the vertical leg span; keep the feet on the floor (plus the jump lift).
    base_h = (s.thigh + s.shin) * np.cos(0.5 * knee_avg) + 0.06 + a.lift
    base = np.array([0.0, base_h, 0.0])
    p[J["SpineBase"]] = base
    up = np.array([0.0, np.cos(a.bend), np.sin(a.bend)])  # trunk axis after the forward bend
    side = np.array([1.0, 0.0, 0.0])
    p[J["SpineMid"]] = base + 0.5 * s.torso * up
    p[J["SpineShoulder"]] = base + s.torso * up
    p[J["Neck"]] = base + (s.torso + 0.07) * up
    head_dir = np.array([0.0, np.cos(a.bend + a.nod), np.sin(a.bend + a.nod)])
    p[J["Head"]] = p[J["Neck"]] + 0.13 * head_dir
    for k, (sgn, sfx) in enumerate(((1.0, "Left"), (-1.0, "Right"))):
        sh = p[J["SpineShoulder"]] + sgn * s.shoulder_half * side - 0.03 * up
        p[J["Shoulder" + sfx]] = sh
        d1 = _arm_dir(sgn, a.arm_el[k], a.arm_az[k])
        d2 = _arm_dir(sgn, a.fore_el[k], a.fore_az[k])
        elbow = sh + s.upper_arm * d1
        wrist = elbow + s.forearm * d2
        p[J["Elbow" + sfx]] = elbow
        p[J["Wrist" + sfx]] = wrist
        p[J["Hand" + sfx]] = wrist + 0.07 * d2
        p[J["HandTip" + sfx]] = wrist + 0.14 * d2
        p[J["Thumb" + sfx]] = wrist + 0.06 * d2 + 0.04 * np.array([-sgn, 0.0, 0.3])
        hip = base + sgn * s.hip_half * side
        p[J["Hip" + sfx]] = hip
        knee = hip + s.thigh * _leg_dir(a.thigh[k] + 0.5 * a.knee[k])
        ankle = knee + s.shin * _leg_dir(a.thigh[k] - 0.5 * a.knee[k])
        p[J["Knee" + sfx]] = knee
        p[J["Ankle" + sfx]] = ankle
        p[J["Foot" + sfx]] = ankle + np.array([0.0, -0.04, 0.12])
    return p * s.height
