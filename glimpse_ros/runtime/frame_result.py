"""The recognizer's per-frame output record (:class:`FrameResult`), returned by ``push``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class FrameResult:
    """Recognition output for one stepped frame.

    Attributes:
        stamp: the frame's stamp as pushed (seconds).
        glimpses: ``(G, 4)`` ``[x, y, sx, sy]`` in crop-normalised coordinates.
        boxes: ``(G, 4)`` ``[x0, y0, x1, y1]`` in the source image's pixels.
        probs: ``(N,)`` class probabilities at this frame (unsmoothed).
        top_k: ``[(label, prob)]`` of the smoothed probabilities, most probable first.
        label: smoothed top-1 label.
        window_index: index of the backbone window (or, causal models, step) that produced
            this frame (0, 1, ...).
        window_probs: clip mode only: ``(N,)`` prediction of the whole window; None in stream mode.
    """

    stamp: float
    glimpses: np.ndarray
    boxes: np.ndarray
    probs: np.ndarray
    top_k: list[tuple[str, float]]
    label: str
    window_index: int
    window_probs: np.ndarray | None = None


__all__ = ["FrameResult"]
