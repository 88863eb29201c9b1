"""Counters and rates of the recognizer node, reported as a diagnostic_msgs/DiagnosticStatus.

All methods are thread-safe: the subscription callback records input and rejections, the inference
thread records processed frames and latencies, a timer builds the status. Everything held is
bounded: counters, one last message per kind, and event deques trimmed to the sliding window.

Output latency (publish time - source stamp) is only meaningful for stamps of the node's clock: a
stamp of 0, one more than FUTURE_TOLERANCE_S in the future or more than MAX_LATENCY_S old (another
clock, a replayed bag without use_sim_time) is counted in ``stamps_out_of_range`` instead of being
mixed into the latency percentiles.

Input is counted on arrival (``messages_received``, ``seconds_since_input``): a camera whose
every frame is refused is not "stale"; the status names the refusal instead (see
:mod:`glimpse_ros.ros.health`).
"""

from __future__ import annotations

import collections
import dataclasses
import math
import threading
import time
from typing import Any, Callable, Mapping

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from glimpse_ros.ros.health import Thresholds, assess
from glimpse_ros.ros.inference_times import InferenceTimes

# diagnostic_updater's convention "<node name>: <task>"; the node passes its own name.
STATUS_NAME = "recognizer: recognition"
# Clocks of two hosts may disagree by this much without the stamp being called impossible.
FUTURE_TOLERANCE_S = 1.0
# Older frames than this cannot have waited in a bounded queue: the stamp is of another clock.
MAX_LATENCY_S = 300.0


class NodeStats:
    """Input/processed rates, dropped and rejected frames, latency percentiles, staleness."""

    def __init__(self, stale_timeout_s: float = 3.0, window_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic,
                 no_output_timeout_s: float = 10.0) -> None:
        """Create empty statistics.

        Args:
            stale_timeout_s: no input for this long -> WARN "stale".
            window_s: rates and latency percentiles are computed over this sliding window.
            clock: monotonic time source (injectable for tests).
            no_output_timeout_s: input arriving but no output for this long -> WARN.
        """
        self._lock = threading.Lock()
        self._clock = clock
        self.stale_timeout_s = stale_timeout_s
        self.thresholds = Thresholds(stale_timeout_s=stale_timeout_s,
                                     no_output_timeout_s=no_output_timeout_s)
        self.window_s = window_s
        self._start = clock()
        self._inputs: collections.deque[float] = collections.deque()  # accepted frames
        self._arrivals: collections.deque[float] = collections.deque()  # every message
        self._reject_events: collections.deque[float] = collections.deque()
        self.last_rejection_reason = ""
        self._last_arrival: float | None = None  # monotonic time of the last message
        self._last_frame: float | None = None  # ... and of the last accepted frame
        self._processed: collections.deque[tuple[float, float]] = collections.deque()
        self.received = 0
        self.processed = 0
        self.dropped = 0
        self.rejected: collections.Counter[str] = collections.Counter()
        self.last_error = ""
        self.backend = "unknown"
        self.resets = 0
        self.reset_reasons: dict[str, int] = {}  # per ResetKind value: bounded
        self.last_reset = ""
        self.recognizer_counts: dict[str, int] = {}  # jitter_dropped, size_changes
        self.overlays = 0
        self.lost = 0
        self.messages = 0
        self.stamps_out_of_range = 0
        self.camera_info_rejected = 0
        self.incompatible_qos = 0
        self.skipped_by_middleware = 0
        self._lost_events: collections.deque[tuple[float, int]] = collections.deque()
        self._drop_events: collections.deque[tuple[float, int]] = collections.deque()
        self._reset_events: collections.deque[tuple[float, int]] = collections.deque()
        self.inference = InferenceTimes()  # per frame handed to the recognizer
        self._waiting_since: float | None = None  # first input since the last output

    def set_timeouts(self, stale_timeout_s: float, no_output_timeout_s: float) -> None:
        """Change the WARN timeouts at run time (live parameters)."""
        with self._lock:
            self.stale_timeout_s = stale_timeout_s
            self.thresholds = dataclasses.replace(self.thresholds,
                                                  stale_timeout_s=stale_timeout_s,
                                                  no_output_timeout_s=no_output_timeout_s)

    def _trim(self, now: float) -> None:
        for times in (self._inputs, self._arrivals, self._reject_events):
            while times and times[0] < now - self.window_s:
                times.popleft()
        while self._processed and self._processed[0][0] < now - self.window_s:
            self._processed.popleft()
        self.inference.trim(now - self.window_s)
        for events in (self._lost_events, self._drop_events, self._reset_events):
            while events and events[0][0] < now - self.window_s:
                events.popleft()

    def record_message(self) -> None:
        """A subscription callback got a message (before any check): input arrived."""
        with self._lock:
            now = self._clock()
            self.messages += 1
            self._arrivals.append(now)
            self._last_arrival = now
            self._trim(now)

    def record_input(self) -> None:
        """A frame was received and converted."""
        with self._lock:
            now = self._clock()
            stale = not self._inputs or now - self._inputs[-1] > self.stale_timeout_s
            self.received += 1
            self._inputs.append(now)
            self._last_frame = now
            if self._waiting_since is None or stale:  # after a stale camera the wait restarts
                self._waiting_since = now
            self._trim(now)

    def record_rejected(self, reason: str, message: str = "") -> None:
        """A frame was rejected (bad message); counted per ``reason``."""
        with self._lock:
            self.rejected[reason] += 1
            self.last_error = message
            self.last_rejection_reason = reason
            self._reject_events.append(self._clock())

    def record_dropped(self, count: int = 1) -> None:
        """Frames dropped from the queue (inference behind, or discarded by a reset)."""
        with self._lock:
            self.dropped += count
            self._drop_events.append((self._clock(), count))

    def record_processed(self, latency_s: float, stamp_s: float | None = None) -> None:
        """A frame produced an output; ``latency_s`` = output publish time - source stamp.

        The latency goes into the percentiles only when the stamp is plausible (see the module
        docstring); otherwise ``stamps_out_of_range`` counts it.
        """
        plausible = (math.isfinite(latency_s) and (stamp_s is None or stamp_s > 0)
                     and -FUTURE_TOLERANCE_S <= latency_s <= MAX_LATENCY_S)
        with self._lock:
            now = self._clock()
            self.processed += 1
            self._waiting_since = None
            if plausible:
                self._processed.append((now, latency_s))
            else:
                self.stamps_out_of_range += 1
                self._processed.append((now, math.nan))
            self._trim(now)

    def record_inference(self, wall_s: float, cpu_s: float) -> None:
        """One frame went through the recognizer: its wall time and the thread's CPU time.

        CPU well below wall time means the inference thread waited (for a core or the GIL).
        """
        with self._lock:
            now = self._clock()
            self.inference.record(now, wall_s, cpu_s)
            self._trim(now)

    def record_lost(self, count: int) -> None:
        """Samples the middleware reports lost before delivery (e.g. fragments of big frames)."""
        with self._lock:
            self.lost += count
            self._lost_events.append((self._clock(), count))

    def set_resets(self, reasons: Mapping[Any, int], last: str = "",
                   counts: Mapping[str, int] | None = None) -> None:
        """Recognizer state resets so far per kind, its last reset message and its counters.

        Args:
            reasons: count per reset kind (a ``ResetKind`` or its string value).
            last: message of the last reset.
            counts: other recognizer counters shown as they are (``jitter_dropped``,
                ``size_changes``).
        """
        kinds = {str(getattr(k, "value", k)): int(n) for k, n in reasons.items()}
        total = sum(kinds.values())
        with self._lock:
            if total > self.resets:
                self._reset_events.append((self._clock(), total - self.resets))
            self.reset_reasons = kinds
            self.resets = total
            self.last_reset = str(last)[:200]
            self.recognizer_counts = {k: int(v) for k, v in (counts or {}).items()}

    def record_camera_info_rejected(self, message: str) -> None:
        """A CameraInfo was refused (non-finite or degenerate intrinsics)."""
        with self._lock:
            self.camera_info_rejected += 1
            self.last_error = message

    def record_incompatible_qos(self, count: int) -> None:
        """Publishers the middleware found incompatible with the input subscription's QoS."""
        with self._lock:
            self.incompatible_qos += count

    def record_skipped(self, count: int) -> None:
        """Messages a publisher sent that never reached the callback (sequence-number gaps)."""
        with self._lock:
            self.skipped_by_middleware += count

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
            lat = lat[np.isfinite(lat)]  # implausible stamps are kept out (stamps_out_of_range)
            inputs_window = len(self._inputs)
            drops_window = sum(n for _, n in self._drop_events)
            last_frame = self._last_frame
            last_input = max((t for t in (self._last_arrival, last_frame) if t is not None),
                             default=None)
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
                "seconds_since_frame": (now - last_frame) if last_frame is not None
                else now - self._start,
                "messages_in_window": len(self._arrivals),
                "rejected_in_window": len(self._reject_events),
                "last_rejection_reason": self.last_rejection_reason,
                "seconds_without_output": (now - self._waiting_since)
                if self._waiting_since is not None else 0.0,
                "messages_received": self.messages,
                "drop_ratio": drops_window / max(inputs_window, 1),
                "inputs_in_window": inputs_window,
                "stamps_out_of_range": self.stamps_out_of_range,
                "camera_info_rejected": self.camera_info_rejected,
                "incompatible_qos": self.incompatible_qos,
                "skipped_by_middleware": self.skipped_by_middleware,
                "resets": self.resets,
                "resets_in_window": sum(n for _, n in self._reset_events),
                "overlays_published": self.overlays,
                # seconds of the window covered by input (the rates are judged over a full one)
                "input_span_s": (now - self._inputs[0]) if self._inputs else 0.0,
            }
            values.update(self.inference.values())
            values.update(self.recognizer_counts)
            for reason, count in sorted(self.rejected.items()):
                values[f"rejected_{reason}"] = count
            for reason, count in sorted(self.reset_reasons.items()):
                values[f"resets_{reason}"] = count
            values["last_reset"] = self.last_reset
            values["last_error"] = self.last_error
            return values

    def status(self, hardware_id: str = "", name: str = STATUS_NAME) -> DiagnosticStatus:
        """Build the DiagnosticStatus; level and message from :func:`health.assess`."""
        values = self.snapshot()
        level, message = assess(values, self.thresholds, self.window_s)
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
