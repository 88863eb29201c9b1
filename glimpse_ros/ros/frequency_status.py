"""Frequency check of the node's output rate, in diagnostic_updater's FrequencyStatus format.

diagnostic_updater (C++/Python, not on PyPI) publishes, per monitored rate, the keys "Events
since startup", "Duration of window (s)", "Actual frequency (Hz)" and the acceptable bounds
``min * (1 - tolerance)`` / ``max * (1 + tolerance)``, with the messages "Frequency too low.",
"Frequency too high." and "Desired frequency met". We merge those keys into the node's status
the way its CompositeDiagnosticTask does (highest level wins, messages of that level joined by
"; "), so one status per node carries them.

Departure from diagnostic_updater: with no lower bound configured (``min_hz == 0``), no output at
all is OK ("No events recorded.") instead of ERROR: an idle camera is reported by the stale check.
"""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

TOLERANCE = 0.1  # diagnostic_updater's default FrequencyStatusParam tolerance


def level_value(level: bytes | int) -> int:
    """Integer value of a DiagnosticStatus level (``bytes`` of length 1 in rclpy)."""
    return level if isinstance(level, int) else level[0]


def frequency_check(rate_hz: float, events_total: int, window_s: float, min_hz: float,
                    max_hz: float, tolerance: float = TOLERANCE
                    ) -> tuple[bytes, str, list[KeyValue]]:
    """Level, message and key/values of an output-rate check.

    Args:
        rate_hz: measured rate over the window.
        events_total: events since start-up.
        window_s: length of the measurement window (s).
        min_hz: lowest acceptable rate before tolerance (0 = no lower bound).
        max_hz: highest acceptable rate before tolerance (0 = no upper bound).
        tolerance: relative slack applied to both bounds.
    """
    values = [KeyValue(key="Events since startup", value=str(int(events_total))),
              KeyValue(key="Duration of window (s)", value=f"{window_s:.3f}"),
              KeyValue(key="Actual frequency (Hz)", value=f"{rate_hz:.3f}")]
    low = min_hz * (1.0 - tolerance)
    high = max_hz * (1.0 + tolerance) if max_hz > 0 else float("inf")
    if min_hz > 0 and min_hz == max_hz:
        values.append(KeyValue(key="Target frequency (Hz)", value=f"{min_hz:.3f}"))
    if min_hz > 0:
        values.append(KeyValue(key="Minimum acceptable frequency (Hz)", value=f"{low:.3f}"))
    if max_hz > 0:
        values.append(KeyValue(key="Maximum acceptable frequency (Hz)", value=f"{high:.3f}"))
    if rate_hz <= 0.0:
        level = DiagnosticStatus.ERROR if min_hz > 0 else DiagnosticStatus.OK
        return level, "No events recorded.", values
    if rate_hz < low:
        return DiagnosticStatus.WARN, "Frequency too low.", values
    if rate_hz > high:
        return DiagnosticStatus.WARN, "Frequency too high.", values
    return DiagnosticStatus.OK, "Desired frequency met", values


def merge_check(status: DiagnosticStatus, level: bytes, message: str,
                values: list[KeyValue]) -> DiagnosticStatus:
    """Merge a check into ``status`` like CompositeDiagnosticTask (in place; also returned)."""
    new, old = level_value(level), level_value(status.level)
    if new > old:
        status.level, status.message = level, message
    elif new == old and new != level_value(DiagnosticStatus.OK):
        status.message = f"{status.message}; {message}"
    status.values.extend(values)
    return status


__all__ = ["TOLERANCE", "frequency_check", "level_value", "merge_check"]
