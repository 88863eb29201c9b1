"""Draw glimpse boxes and the recognised label onto a frame (``~/overlay`` image, demo)."""

from __future__ import annotations

import cv2
import numpy as np

from glimpse_ros.ros.markers import glimpse_colour


def draw_overlay(rgb: np.ndarray, boxes: np.ndarray, label: str,
                 top_k: list[tuple[str, float]] | None = None) -> np.ndarray:
    """Return a copy of ``rgb`` with the glimpse boxes, their centres and the label drawn.

    Args:
        rgb: (H, W, 3) uint8 RGB frame.
        boxes: (G, 4) pixel boxes ``[x0, y0, x1, y1]``; glimpse g is drawn in
        ``glimpse_colour(g)``.
        label: text of the top-1 class.
        top_k: optional (label, probability) pairs; the first few are listed under the label.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {rgb.shape} {rgb.dtype}")
    out = np.ascontiguousarray(rgb).copy()
    h, w = out.shape[:2]
    scale = max(h, w) / 640.0
    thick = max(2, int(round(2 * scale)))
    for g, box in enumerate(np.asarray(boxes, dtype=np.float64).reshape(-1, 4)):
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        colour = glimpse_colour(g)
        cv2.rectangle(out, (x0, y0), (x1, y1), colour, thick, cv2.LINE_8)
        cv2.circle(out, ((x0 + x1) // 2, (y0 + y1) // 2), max(2, thick + 1), colour, -1,
                   cv2.LINE_AA)
    lines = [label]
    if top_k:
        lines += [f"{name} {prob:.2f}" for name, prob in top_k[1:3]]
    font, font_scale = cv2.FONT_HERSHEY_SIMPLEX, max(0.35, 0.6 * scale)
    y = 0
    for i, text in enumerate(lines):
        fs = font_scale if i == 0 else 0.8 * font_scale
        (tw, th), base = cv2.getTextSize(text, font, fs, thick)
        pad = max(2, thick * 2)
        # Dark box behind the text so it stays readable on any background.
        cv2.rectangle(out, (0, y), (min(w - 1, tw + 2 * pad), y + th + base + 2 * pad), (0, 0, 0),
                      -1)
        cv2.putText(out, text, (pad, y + th + pad), font, fs, (255, 255, 255), thick, cv2.LINE_AA)
        y += th + base + 2 * pad
    return out
