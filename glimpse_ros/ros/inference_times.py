"""Time the recognizer takes per frame, wall and CPU, over a sliding window and since start.

Not thread-safe on its own: :class:`~glimpse_ros.ros.diagnostics.NodeStats` calls it under its
lock. CPU time (of the inference thread) well below wall time means the thread waited for a core
or the GIL; wall time above the frame period means inference is slower than the camera.
"""

from __future__ import annotations

import collections


class InferenceTimes:
    """Per-frame ``(time, wall s, CPU s)`` in a window, plus totals since start."""

    def __init__(self) -> None:
        """Empty."""
        self._events: collections.deque[tuple[float, float, float]] = collections.deque()
        self.frames, self.wall_s, self.cpu_s = 0, 0.0, 0.0

    def record(self, now: float, wall_s: float, cpu_s: float) -> None:
        """One frame pushed at ``now`` (monotonic s), taking ``wall_s``, ``cpu_s`` of it CPU."""
        self._events.append((now, wall_s, cpu_s))
        self.frames, self.wall_s, self.cpu_s = (self.frames + 1, self.wall_s + wall_s,
                                                self.cpu_s + cpu_s)

    def trim(self, oldest: float) -> None:
        """Forget frames pushed before ``oldest``."""
        while self._events and self._events[0][0] < oldest:
            self._events.popleft()

    def values(self) -> dict[str, float | int]:
        """Window means (ms; nan when no frame) and totals, as diagnostics values."""
        n = len(self._events)
        nan = float("nan")
        return {"inference_ms": 1e3 * sum(w for _, w, _ in self._events) / n if n else nan,
                "inference_cpu_ms": 1e3 * sum(c for _, _, c in self._events) / n if n else nan,
                "frames_pushed": self.frames, "inference_s_total": self.wall_s,
                "inference_cpu_s_total": self.cpu_s}


__all__ = ["InferenceTimes"]
