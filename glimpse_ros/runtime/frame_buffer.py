"""Rolling buffer of the last T preprocessed frames (DESIGN §3).

Frames are preprocessed once, on arrival, and written into a preallocated ring; a window is copied
out in chronological order, straight into the engine's ``(1, 3, T, H, W)`` layout. Memory is fixed
at construction: ``T`` frames plus one output clip, however long the stream.
"""

from __future__ import annotations

import numpy as np


class FrameBuffer:
    """Ring of ``capacity`` frames ``(3, H, W)`` with their stamps and source image sizes."""

    def __init__(self, capacity: int, frame_shape: tuple[int, int, int]) -> None:
        """Allocate storage for ``capacity`` frames of ``frame_shape`` = (3, H, W)."""
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        if len(frame_shape) != 3:
            raise ValueError(f"frame_shape must be (3, H, W), got {frame_shape}")
        self.capacity = capacity
        self.frame_shape = tuple(frame_shape)
        c, h, w = frame_shape
        self._frames = np.zeros((capacity, c, h, w), dtype=np.float32)  # (T, 3, H, W) ring
        self._stamps = np.zeros(capacity, dtype=np.float64)
        self._sizes = np.zeros((capacity, 2), dtype=np.int64)  # source (H, W) per frame
        self._clip = np.zeros((1, c, capacity, h, w), dtype=np.float32)  # (1, 3, T, H, W)
        self._next = 0  # ring index the next frame goes to
        self.count = 0  # frames held (<= capacity)

    def clear(self) -> None:
        """Forget every frame (storage is kept)."""
        self._next = 0
        self.count = 0

    @property
    def full(self) -> bool:
        """True once ``capacity`` frames are held."""
        return self.count == self.capacity

    def push(self, frame: np.ndarray, stamp: float, source_hw: tuple[int, int]) -> None:
        """Store one preprocessed frame ``(3, H, W)`` float32, evicting the oldest when full."""
        if frame.shape != self.frame_shape:
            raise ValueError(f"frame shape {frame.shape} != buffer frame shape {self.frame_shape}")
        self._frames[self._next] = frame
        self._stamps[self._next] = stamp
        self._sizes[self._next] = source_hw
        self._next = (self._next + 1) % self.capacity
        self.count = min(self.count + 1, self.capacity)

    def _order(self) -> np.ndarray:
        """Ring indices of the held frames, oldest first."""
        start = (self._next - self.count) % self.capacity
        return (start + np.arange(self.count)) % self.capacity

    def clip(self) -> np.ndarray:
        """Return the held frames as ``(1, 3, T, H, W)``, oldest first (requires a full buffer).

        The returned array is a buffer owned by this object, overwritten by the next call.
        """
        if not self.full:
            raise ValueError(f"buffer holds {self.count} of {self.capacity} frames")
        for t, i in enumerate(self._order()):
            self._clip[0, :, t] = self._frames[i]  # (3, H, W) into time slot t
        return self._clip

    def stamps(self) -> np.ndarray:
        """Stamps of the held frames, oldest first."""
        return self._stamps[self._order()].copy()

    def sizes(self) -> np.ndarray:
        """Source image (H, W) of the held frames, oldest first: ``(count, 2)``."""
        return self._sizes[self._order()].copy()

    @property
    def nbytes(self) -> int:
        """Bytes of storage held (constant for the buffer's lifetime)."""
        return sum(a.nbytes for a in (self._frames, self._stamps, self._sizes, self._clip))
