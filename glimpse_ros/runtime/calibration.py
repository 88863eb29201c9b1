"""Deterministic synthetic clips for int8 calibration (no data set, no ``training`` import).

Post-training quantisation only needs inputs whose activation ranges resemble the real ones:
camera-like frames, not labelled data. Each clip is a smooth random background (low-frequency
colour texture with a lighting gradient) with a stick figure in front of it (torso, head, two
arms and two legs drawn as thick lines) whose limbs swing with a clip-specific rhythm, plus mild
sensor noise; frames are then preprocessed exactly as the Recognizer does. Seeds fix everything,
so calibration, and hence the quantised model, is reproducible.
"""

from __future__ import annotations

import cv2
import numpy as np

from glimpse_ros.preprocess import preprocess_frame

FRAME_SIZE = (320, 240)  # (width, height) rendered before preprocessing


def _background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Low-frequency colour texture with a lighting gradient: ``(h, w, 3)`` float32 in [0, 255]."""
    coarse = rng.uniform(40, 220, (6, 8, 3)).astype(np.float32)
    bg = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)  # (h, w, 3)
    ramp = np.linspace(0.7, 1.2, w, dtype=np.float32)[None, :, None]  # light from one side
    return np.clip(bg * ramp, 0, 255)


def pt(x: float, y: float) -> tuple[int, int]:
    """Pixel coordinates for OpenCV's drawing functions."""
    return int(round(x)), int(round(y))


def _draw_figure(img: np.ndarray, figure: dict, phase: float) -> None:
    """Stick figure at its clip's position, limbs at ``phase`` (radians) of their swing."""
    cx, cy, s, colour, limb = (figure[k] for k in ("cx", "cy", "scale", "colour", "limb"))
    hip, neck = (cx, cy + 0.15 * s), (cx, cy - 0.25 * s)
    cv2.line(img, pt(*hip), pt(*neck), colour, int(0.12 * s))  # torso
    cv2.circle(img, pt(cx, cy - 0.38 * s), int(0.1 * s), limb, -1)  # head
    for side, amp in ((-1, figure["arm_amp"]), (1, figure["arm_amp2"])):
        a = np.pi / 2 + side * (0.4 + amp * np.sin(phase + (side > 0) * np.pi))
        hand = (neck[0] + 0.4 * s * np.cos(a) * side, neck[1] + 0.4 * s * np.sin(a) * 0.9)
        cv2.line(img, pt(*neck), pt(*hand), limb, int(0.06 * s))  # arm
        b = np.pi / 2 + side * 0.2 * (1 + np.sin(phase * 0.5 + side))
        foot = (hip[0] + 0.45 * s * np.cos(b), hip[1] + 0.45 * s * np.sin(b))
        cv2.line(img, pt(*hip), pt(*foot), colour, int(0.08 * s))  # leg


def synthetic_clips(count: int, frames: int, crop: int, seed: int) -> list[np.ndarray]:
    """``count`` preprocessed clips ``(1, 3, frames, crop, crop)`` float32, reproducible by seed.

    Frames are rendered at :data:`FRAME_SIZE` and preprocessed like the Recognizer's input
    (resize to ``crop * 8 / 7``, the 256/224 ratio, then centre crop ``crop``).
    """
    resize = int(round(crop * 8 / 7))
    w, h = FRAME_SIZE
    clips = []
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        bg = _background(rng, w, h)
        figure = {"cx": rng.uniform(0.3, 0.7) * w, "cy": rng.uniform(0.45, 0.6) * h,
                  "scale": rng.uniform(0.5, 0.8) * h,
                  "colour": tuple(float(v) for v in rng.integers(20, 236, 3)),
                  "limb": tuple(float(v) for v in rng.integers(20, 236, 3)),
                  "arm_amp": rng.uniform(0.2, 1.2), "arm_amp2": rng.uniform(0.0, 1.2)}
        speed, phase0 = rng.uniform(0.3, 0.9), rng.uniform(0, 2 * np.pi)
        video = []
        for t in range(frames):
            img = bg.copy()
            _draw_figure(img, figure, phase0 + speed * t)
            img += rng.normal(0.0, 2.0, img.shape).astype(np.float32)  # sensor noise
            rgb = np.clip(img, 0, 255).astype(np.uint8)  # (h, w, 3)
            video.append(preprocess_frame(rgb, resize, crop))  # (3, crop, crop)
        clips.append(np.stack(video, axis=1)[None])  # (1, 3, frames, crop, crop)
    return clips


__all__ = ["FRAME_SIZE", "synthetic_clips"]
