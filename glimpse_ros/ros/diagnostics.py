"""Counters and rates of the recognizer node, reported as a diagnostic_msgs/DiagnosticStatus.

All methods are thread-safe: the subscription callback records input and rejections, the inference
thread records processed frames and latencies, a timer builds the status.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Callable, Mapping

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

# diagnostic_updater's convention "<node name>: <task>"; the node passes its own name.
STATUS_NAME = "recognizer: recognition"
# Reset reasons carry values ("gap of 1.234s > max_gap_s"): diagnostics group them by kind.
RESET_KINDS = (("reset service", "service"), ("time jumped", "time_jump"), ("gap of", "gap"),
               ("frame size changed", "size_change"))


def reset_kind(reason: str) -> str:
    """Diagnostics key suffix of a recognizer reset reason."""
    for prefix, kind in RESET_KINDS:
        if reason.startswith(prefix):
            return kind
    return "other"


class NodeStats:
    """Input/processed rates, dropped and rejected frames, latency percentiles, staleness."""

    def __init__(self, stale_timeout_s: float = 3.0, window_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """Create empty statistics.

        Args:
            stale_timeout_s: no input for this long -> WARN "stale".
            window_s: rates and latency percentiles are computed over this sliding window.
            clock: monotonic time source (injectable for tests).
        """
        self._lock = threading.Lock()
        self._clock = clock
        self.stale_timeout_s = stale_timeout_s
        self.window_s = window_s
        self._start = clock()
        self._inputs: collections.deque[float] = collections.deque()
        self._processed: collections.deque[tuple[float, float]] = collections.deque()
        self.received = 0
        self.processed = 0
        self.dropped = 0
        self.rejected: collections.Counter[str] = collections.Counter()
        self.last_error = ""
        self.backend = "unknown"
        self.resets = 0
        self.reset_reasons: dict[str, int] = {}
        self.overlays = 0
        self.lost = 0
        self._lost_events: collections.deque[tuple[float, int]] = collections.deque()

    def _trim(self, now: float) -> None:
        while self._inputs and self._inputs[0] < now - self.window_s:
            self._inputs.popleft()
        while self._processed and self._processed[0][0] < now - self.window_s:
            self._processed.popleft()
        while self._lost_events and self._lost_events[0][0] < now - self.window_s:
            self._lost_events.popleft()

    def record_input(self) -> None:
        """A frame was received and converted."""
        with self._lock:
            now = self._clock()
            self.received += 1
            self._inputs.append(now)
            self._trim(now)

    def record_rejected(self, reason: str, message: str = "") -> None:
        """A frame was rejected (bad message); counted per ``reason``."""
        with self._lock:
            self.rejected[reason] += 1
            self.last_error = message

    def record_dropped(self, count: int = 1) -> None:
        """Frames dropped from the queue (inference behind, or discarded by a reset)."""
        with self._lock:
            self.dropped += count

    def record_processed(self, latency_s: float) -> None:
        """A frame produced an output; ``latency_s`` = output publish time - source stamp."""
        with self._lock:
            now = self._clock()
            self.processed += 1
            self._processed.append((now, latency_s))
            self._trim(now)

    def record_lost(self, count: int) -> None:
        """Samples the middleware reports lost before delivery (e.g. fragments of big frames)."""
        with self._lock:
            self.lost += count
            self._lost_events.append((self._clock(), count))

    def set_resets(self, reasons: Mapping[str, int]) -> None:
        """Recognizer state resets so far, per reason (service, time jump, gap, size change)."""
        kinds: collections.Counter[str] = collections.Counter()
        for reason, count in reasons.items():
            kinds[reset_kind(str(reason))] += int(count)
        with self._lock:
            self.reset_reasons = dict(kinds)
            self.resets = sum(kinds.values())

    def record_overlay(self) -> None:
        """An overlay image was published (only happens while someone subscribes)."""
        with self._lock:
            self.overlays += 1

    def snapshot(self) -> dict[str, float | int | str]:
        """Current values as a flat dict (also used by tests and the benchmark)."""
        with self._lock:
            now = self._clock()
            self._trim(now)
            span = min(self.window_s, max(now - self._start, 1e-6))
            lat = np.array([x for _, x in self._processed], dtype=np.float64) * 1e3
            last_input = self._inputs[-1] if self._inputs else None
            values: dict[str, float | int | str] = {
                "backend": self.backend,
                "input_rate_hz": len(self._inputs) / span,
                "processed_rate_hz": len(self._processed) / span,
                "frames_received": self.received,
                "frames_processed": self.processed,
                "dropped_frames": self.dropped,
                "lost_in_transport": self.lost,
                "lost_rate_hz": sum(n for _, n in self._lost_events) / span,
                "rejected_frames": sum(self.rejected.values()),
                "latency_p50_ms": float(np.percentile(lat, 50)) if lat.size else float("nan"),
                "latency_p95_ms": float(np.percentile(lat, 95)) if lat.size else float("nan"),
                "seconds_since_input": (now - last_input) if last_input is not None
                else now - self._start,
                "resets": self.resets,
                "overlays_published": self.overlays,
            }
            for reason, count in sorted(self.rejected.items()):
                values[f"rejected_{reason}"] = count
            for reason, count in sorted(self.reset_reasons.items()):
                values[f"resets_{reason}"] = count
            values["last_error"] = self.last_error
            return values

    def status(self, hardware_id: str = "", name: str = STATUS_NAME) -> DiagnosticStatus:
        """Build the DiagnosticStatus: OK, or WARN when no input arrived for stale_timeout_s."""
        values = self.snapshot()
        level, message = DiagnosticStatus.OK, "running"
        if values["lost_rate_hz"] > max(1.0, values["input_rate_hz"]):
            level = DiagnosticStatus.WARN
            message = ("most frames are lost in transport (large frames, best-effort QoS): run "
                       "the camera with config/fastdds.xml (FASTDDS_DEFAULT_PROFILES_FILE), set "
                       "input_reliability to reliable or use compressed images")
        elif values["seconds_since_input"] > self.stale_timeout_s:
            level = DiagnosticStatus.WARN
            message = f"stale: no input for {values['seconds_since_input']:.1f} s"
        elif values["rejected_frames"] and self.last_error:
            message = f"running; last rejected frame: {self.last_error}"
        status = DiagnosticStatus(level=level, name=name, message=message,
                                  hardware_id=hardware_id)
        for key, value in values.items():
            text = f"{value:.3f}" if isinstance(value, float) else str(value)
            status.values.append(KeyValue(key=key, value=text))
        return status


def diagnostic_array(status: DiagnosticStatus, stamp) -> DiagnosticArray:
    """Wrap one status in a DiagnosticArray stamped ``stamp``."""
    arr = DiagnosticArray()
    arr.header.stamp = stamp
    arr.status = [status]
    return arr


def status_values(status: DiagnosticStatus) -> dict[str, str]:
    """Turn the KeyValue list of a status into a dict (helper for consumers and tests)."""
    return {kv.key: kv.value for kv in status.values}
