"""Count messages that never reached a subscription callback, from publication sequence numbers.

The middleware's ``message_lost`` event (SubscriptionEventCallbacks) reports only samples the
DDS reader knows it lost (e.g. fragments of a large best-effort sample). A sample that arrived
but was overwritten in the reader's history before the executor took it (depth 1 under a burst)
is reported by nothing. Every message carries its publisher's sequence number in the
``MessageInfo`` rclpy passes to two-argument callbacks: a jump from n to n + k means k - 1
messages of that publisher were not delivered, whatever the cause.

What this cannot see: messages of a publisher whose first message never arrived, the tail of a
burst after the last delivered message, and middlewares that do not fill the sequence number
(then nothing is counted).
"""

from __future__ import annotations

import collections
from typing import Any, Mapping

# Publishers tracked at once; the least recently heard one is forgotten beyond this.
MAX_PUBLISHERS = 32
# rmw's RMW_MESSAGE_INFO_SEQUENCE_NUMBER_UNSUPPORTED (UINT64_MAX).
UNSUPPORTED = 2**64 - 1


class SequenceGaps:
    """Per-publisher last sequence number; :meth:`update` returns the messages skipped."""

    def __init__(self, max_publishers: int = MAX_PUBLISHERS) -> None:
        """Track at most ``max_publishers`` publishers (least recently heard evicted)."""
        if max_publishers < 1:
            raise ValueError(f"max_publishers must be >= 1, got {max_publishers}")
        self._last: collections.OrderedDict[Any, int] = collections.OrderedDict()
        self._max = max_publishers

    def update(self, info: Mapping[str, Any] | None) -> int:
        """Record one delivered message's ``MessageInfo``; return how many were skipped before it.

        A sequence number that does not increase (publisher restarted) starts over at 0 skips.
        """
        if not info:
            return 0
        seq = info.get("publication_sequence_number")
        if seq is None or seq in (0, UNSUPPORTED):
            return 0
        gid = info.get("publisher_gid")
        key = bytes(gid.get("data", b"")) if isinstance(gid, Mapping) else repr(gid)
        last = self._last.pop(key, None)
        self._last[key] = int(seq)
        while len(self._last) > self._max:
            self._last.popitem(last=False)
        if last is None or seq <= last:
            return 0
        return int(seq) - last - 1

    def reset(self) -> None:
        """Forget every publisher (the subscription was destroyed: lifecycle deactivate/cleanup).

        Messages published while nobody subscribed were not lost by the middleware; the first
        message after re-subscribing sets a new baseline.
        """
        self._last.clear()

    def __len__(self) -> int:
        """Publishers tracked."""
        return len(self._last)


__all__ = ["SequenceGaps"]
