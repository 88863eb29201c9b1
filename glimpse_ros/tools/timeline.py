"""A timeline image of class probabilities over a video, drawn with OpenCV (no plot library)."""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

MARGIN_LEFT, MARGIN_TOP, MARGIN_BOTTOM = 48, 34, 28
PLOT_HEIGHT, LEGEND_WIDTH = 260, 200


def class_colour(index: int, count: int) -> tuple[int, int, int]:
    """A distinct BGR colour for class ``index`` of ``count`` (evenly spaced hues)."""
    r, g, b = colorsys.hsv_to_rgb((index / max(count, 1)) % 1.0, 0.85, 0.9)
    return int(b * 255), int(g * 255), int(r * 255)


def timeline_image(stamps: np.ndarray, probs: np.ndarray, labels: list[str],
                   width: int = 900) -> np.ndarray:
    """Draw per-class probability curves over time, with a band of the top-1 class on top.

    Args:
        stamps: ``(F,)`` frame times in seconds (increasing).
        probs: ``(F, N)`` class probabilities per labelled frame.
        labels: ``N`` class names (legend).
        width: width of the plot area in pixels.

    Returns:
        ``(H, W, 3)`` uint8 BGR image.

    Raises:
        ValueError: shapes disagree or there are no frames.
    """
    stamps = np.asarray(stamps, dtype=np.float64)
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[0] != stamps.shape[0] or probs.shape[1] != len(labels):
        raise ValueError(f"probs {probs.shape} must be (frames={stamps.shape[0]}, "
                         f"classes={len(labels)})")
    if stamps.size == 0:
        raise ValueError("no labelled frames to draw")
    n = len(labels)
    img = np.full((MARGIN_TOP + PLOT_HEIGHT + MARGIN_BOTTOM,
                   MARGIN_LEFT + width + LEGEND_WIDTH, 3), 255, np.uint8)
    t0, t1 = float(stamps[0]), float(stamps[-1])
    span = max(t1 - t0, 1e-9)
    xs = MARGIN_LEFT + np.round((stamps - t0) / span * (width - 1)).astype(np.int32)  # (F,)

    def y_of(p: np.ndarray) -> np.ndarray:
        return MARGIN_TOP + np.round((1.0 - p) * (PLOT_HEIGHT - 1)).astype(np.int32)

    font = cv2.FONT_HERSHEY_SIMPLEX
    # axes and grid: probability 0, 0.5, 1
    for p in (0.0, 0.5, 1.0):
        y = int(y_of(np.array(p)))
        cv2.line(img, (MARGIN_LEFT, y), (MARGIN_LEFT + width - 1, y), (215, 215, 215), 1)
        cv2.putText(img, f"{p:.1f}", (6, y + 4), font, 0.4, (60, 60, 60), 1, cv2.LINE_AA)
    cv2.putText(img, f"{t0:.2f} s", (MARGIN_LEFT, img.shape[0] - 8), font, 0.4, (60, 60, 60), 1)
    cv2.putText(img, f"{t1:.2f} s", (MARGIN_LEFT + width - 60, img.shape[0] - 8), font, 0.4,
                (60, 60, 60), 1)
    # top-1 band: one coloured tick per labelled frame
    top1 = probs.argmax(axis=1)  # (F,)
    for i, (x, c) in enumerate(zip(xs, top1)):
        x_end = xs[i + 1] if i + 1 < len(xs) else x + 1
        cv2.rectangle(img, (int(x), 8), (int(max(x, x_end - 1)), MARGIN_TOP - 10),
                      class_colour(int(c), n), -1)
    for c in range(n):
        colour = class_colour(c, n)
        pts = np.stack([xs, y_of(probs[:, c])], axis=1).reshape(-1, 1, 2)  # (F, 1, 2)
        cv2.polylines(img, [pts], False, colour, 2, cv2.LINE_AA)
        y = MARGIN_TOP + 12 + 18 * c
        x = MARGIN_LEFT + width + 12
        cv2.rectangle(img, (x, y - 9), (x + 14, y + 3), colour, -1)
        cv2.putText(img, labels[c][:24], (x + 20, y + 2), font, 0.42, (30, 30, 30), 1,
                    cv2.LINE_AA)
    return img
