"""Rate-limited logging of the recognizer's resets (:class:`ResetLog`).

A stream that resets on every frame must not flood the log: at most one line per reset kind per
:data:`RESET_LOG_PERIOD_S`, and the next line that is written counts the ones skipped.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter

from glimpse_ros.runtime.stream_policy import ResetKind

RESET_LOG_PERIOD_S = 1.0


class ResetLog:
    """Logs resets to ``logger``, one line per kind per period, with the skipped count."""

    def __init__(self, logger: logging.Logger) -> None:
        """Nothing logged yet."""
        self._log = logger
        self._logged: dict[ResetKind, float] = {}  # last log time per kind
        self._unlogged: Counter[ResetKind] = Counter()  # resets not logged since then

    def log(self, kind: ResetKind, message: str) -> None:
        """Log a reset: at most one line per kind per RESET_LOG_PERIOD_S, with the skipped count.

        Automatic resets lose the sequence's context: WARNING; a requested one is routine: INFO.
        """
        now = time.monotonic()
        if now - self._logged.get(kind, -math.inf) < RESET_LOG_PERIOD_S:
            self._unlogged[kind] += 1
            return
        skipped = self._unlogged.pop(kind, 0)
        self._logged[kind] = now
        level = logging.INFO if kind is ResetKind.REQUESTED else logging.WARNING
        more = f" ({skipped} more {kind.value} resets not logged)" if skipped else ""
        self._log.log(level, "recognizer reset (%s): %s%s", kind.value, message, more)


__all__ = ["RESET_LOG_PERIOD_S", "ResetLog"]
