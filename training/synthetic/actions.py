"""Synthetic actions: periodic limb motions differing locally (an arm, both arms, a leg, the head).

Each action maps a phase (cycles, any real number) to :class:`PoseAngles`. The idle pose around the
moving limb carries small per-video random offsets so that a static posture alone is a weak cue.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from training.synthetic.body import PoseAngles

TAU = 2.0 * np.pi


def _wave(side: int, ph: float) -> dict:
    """Raise one arm and swing the forearm left-right above the shoulder."""
    el, az, fel, faz = [0.15, 0.15], [0.3, 0.3], [0.3, 0.3], [1.2, 1.2]
    el[side], az[side] = 1.75, 0.25
    fel[side] = 2.6 + 0.45 * np.sin(TAU * ph)
    faz[side] = 0.2
    return dict(arm_el=tuple(el), arm_az=tuple(az), fore_el=tuple(fel), fore_az=tuple(faz))


def _clap(ph: float) -> dict:
    """Both forearms forward, hands meeting in front of the chest and parting."""
    open_ = 0.5 + 0.5 * np.cos(TAU * ph)          # 1 = hands apart, 0 = hands together
    faz = 2.05 - 1.1 * open_                      # azimuth past pi/2 brings the hands inwards
    return dict(arm_el=(0.55, 0.55), arm_az=(1.0, 1.0), fore_el=(1.5, 1.5), fore_az=(faz, faz))


def _punch(ph: float) -> dict:
    """Right fist driven straight forward and pulled back to the chest."""
    ext = max(0.0, np.sin(TAU * ph)) ** 0.7       # 0 = guard, 1 = arm extended
    el_r = 0.5 + 1.05 * ext
    fel_r = 2.2 - 0.65 * ext
    return dict(arm_el=(0.5, el_r), arm_az=(1.2, 1.45), fore_el=(2.2, fel_r),
                fore_az=(1.9, 1.6 - 0.05 * ext))


def _kick(ph: float) -> dict:
    """Right leg kicked forward and back down."""
    ext = max(0.0, np.sin(TAU * ph))
    return dict(thigh=(0.0, 1.25 * ext), knee=(0.1, 0.9 * (1.0 - ext) * (ext > 0.05)),
                arm_el=(0.45, 0.45), arm_az=(0.6, 0.6))


def _nod(ph: float) -> dict:
    """Head tilted forward and back up."""
    return dict(nod=0.75 * max(0.0, np.sin(TAU * ph)))


def _bow(ph: float) -> dict:
    """Trunk bent forward from the hips and raised again."""
    return dict(bend=0.85 * max(0.0, np.sin(TAU * ph)) ** 0.8)


def _jump(ph: float) -> dict:
    """Crouch, jump (whole body up, arms swung up), land."""
    s = np.sin(TAU * ph)
    lift = 0.35 * max(0.0, s)
    crouch = 0.9 * max(0.0, -s)
    return dict(lift=lift, knee=(crouch, crouch), thigh=(0.3 * crouch, 0.3 * crouch),
                arm_el=(0.4 + 1.6 * max(0.0, s), 0.4 + 1.6 * max(0.0, s)), arm_az=(0.9, 0.9))


def _raise_both(ph: float) -> dict:
    """Both arms raised sideways overhead and lowered."""
    up = 0.5 - 0.5 * np.cos(TAU * ph)
    el = 0.2 + 2.6 * up
    return dict(arm_el=(el, el), arm_az=(0.1, 0.1), fore_el=(el + 0.2, el + 0.2),
                fore_az=(0.1, 0.1))


ACTIONS: dict[str, Callable[[float], dict]] = {
    "wave left hand": lambda ph: _wave(0, ph),
    "wave right hand": lambda ph: _wave(1, ph),
    "clap": _clap,
    "punch": _punch,
    "kick": _kick,
    "nod": _nod,
    "bow": _bow,
    "jump": _jump,
    "raise both hands": _raise_both,
}
ACTION_NAMES: tuple[str, ...] = tuple(ACTIONS)


def action_pose(action: int, phase: float, idle: np.ndarray) -> PoseAngles:
    """Pose for ``action`` (index into :data:`ACTION_NAMES`) at ``phase``.

    Args:
        action: 0-based action index.
        phase: position in the cycle (1.0 = one full repetition).
        idle: (6,) per-video offsets of the resting posture (arm elevations/azimuths, sway
            amplitude and sway phase), drawn by the generator.
    """
    if not 0 <= action < len(ACTION_NAMES):
        raise ValueError(f"action {action} out of range 0..{len(ACTION_NAMES) - 1}")
    sway = idle[4] * np.sin(TAU * (0.5 * phase + idle[5]))
    base = dict(arm_el=(0.15 + idle[0], 0.15 + idle[1]), arm_az=(0.3 + idle[2], 0.3 + idle[3]),
                fore_el=(0.3 + idle[0] + sway, 0.3 + idle[1] - sway), fore_az=(1.2, 1.2))
    base.update(ACTIONS[ACTION_NAMES[action]](phase))
    return PoseAngles(**base)
