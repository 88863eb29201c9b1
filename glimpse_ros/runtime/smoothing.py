"""Temporal smoothing of class probabilities and top-k selection."""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable softmax over the last axis (float64 accumulation, float32 result)."""
    x = np.asarray(logits, dtype=np.float64)
    x = np.exp(x - x.max(axis=-1, keepdims=True))
    return (x / x.sum(axis=-1, keepdims=True)).astype(np.float32)


class EmaSmoother:
    """Exponential moving average of probability vectors.

    ``s_t = a * s_{t-1} + (1 - a) * p_t`` with ``a = smoothing`` in [0, 1); ``a = 0`` disables
    smoothing. The first frame after a reset starts the average (no bias towards zero).
    """

    def __init__(self, smoothing: float) -> None:
        """Create with the EMA coefficient ``smoothing``."""
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
        self.smoothing = smoothing
        self.state: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the running average."""
        self.state = None

    def update(self, probs: np.ndarray) -> np.ndarray:
        """Fold ``probs (N,)`` into the average and return a copy of the new average."""
        probs = np.asarray(probs, dtype=np.float32)
        if self.state is None or self.state.shape != probs.shape:
            self.state = probs.copy()
        else:
            a = self.smoothing
            self.state = a * self.state + (1.0 - a) * probs
        return self.state.copy()


def top_k(probs: np.ndarray, labels: list[str], k: int) -> list[tuple[str, float]]:
    """The ``k`` most probable ``(label, prob)`` pairs, most probable first (ties: lower index)."""
    if len(labels) != probs.shape[-1]:
        raise ValueError(f"{len(labels)} labels for {probs.shape[-1]} classes")
    k = min(k, len(labels))
    order = np.argsort(-probs, kind="stable")[:k]
    return [(labels[i], float(probs[i])) for i in order]
