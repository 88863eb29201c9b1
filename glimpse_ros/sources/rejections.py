"""The inputs a frame source skipped, counted per reason, with a bounded number of warnings.

A source never stops at one bad input (an unreadable image in a folder, a message of a bag that is
not a decodable frame): it skips it, logs a warning naming the input and the cause, and counts it
here, so that the tools can report ``3 skipped (2 corrupt, 1 too_large)`` in their summary and
refuse a run in which nothing was usable.
"""

from __future__ import annotations

import collections
import logging

#: Warnings logged per reason; further inputs of that reason are only counted.
WARNINGS_PER_REASON = 5


class Rejections:
    """Counts of skipped inputs per reason key (``corrupt``, ``too_large``, ``not_cdr``, ...)."""

    def __init__(self, logger: logging.Logger) -> None:
        """Start with no rejection; warnings go to ``logger``."""
        self.by_reason: collections.Counter[str] = collections.Counter()
        self._log = logger

    def add(self, reason: str, where: str, why: str) -> None:
        """Count one skipped input; warn for the first :data:`WARNINGS_PER_REASON` per reason.

        Args:
            reason: short key of the cause.
            where: the input (file name, bag message index).
            why: the cause in words.
        """
        self.by_reason[reason] += 1
        count = self.by_reason[reason]
        if count <= WARNINGS_PER_REASON:
            more = (f" (further '{reason}' rejections are counted, not logged)"
                    if count == WARNINGS_PER_REASON else "")
            self._log.warning("skipping %s: %s%s", where, why, more)

    @property
    def total(self) -> int:
        """Inputs skipped so far."""
        return sum(self.by_reason.values())

    def summary(self) -> str:
        """``"3 skipped (2 corrupt, 1 too_large)"``, or ``"none skipped"``."""
        if not self.by_reason:
            return "none skipped"
        parts = ", ".join(f"{n} {reason}" for reason, n in sorted(self.by_reason.items()))
        return f"{self.total} skipped ({parts})"


__all__ = ["Rejections", "WARNINGS_PER_REASON"]
