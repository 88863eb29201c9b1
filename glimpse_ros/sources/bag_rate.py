"""The frame rate of a bag's image topic, from its messages' header stamps.

``metadata.yaml``'s message count and duration can lie (a count that overstates the messages, a
bag recorded with one receive time for a burst of messages): dividing them gave rates of 1e9 fps.
The rate here is 1 / the median interval between the header stamps of the topic's first
:data:`SAMPLE` messages, read straight from the CDR bytes (every sensor_msgs image starts with a
``std_msgs/Header``) without deserialising the pixels; the receive times stand in when the header
stamps do not advance, and :data:`DEFAULT_FPS` (with a warning) when neither gives a rate within
``(0, MAX_FPS]``.
"""

from __future__ import annotations

import logging
import struct
from typing import Iterable

import numpy as np

LOG = logging.getLogger(__name__)
SAMPLE = 300
DEFAULT_FPS = 30.0
MIN_FPS, MAX_FPS = 0.01, 1000.0


def cdr_header_stamp(raw: bytes) -> float | None:
    """Seconds of the ``std_msgs/Header`` stamp at the start of a CDR message, None if unreadable.

    Layout: 4 bytes of encapsulation (byte 1: 0 big-endian, 1 little-endian CDR), then
    ``int32 sec`` and ``uint32 nanosec``.
    """
    if len(raw) < 12 or raw[0] != 0 or raw[1] not in (0, 1):
        return None
    order = "<" if raw[1] == 1 else ">"
    sec, nanosec = struct.unpack(order + "iI", raw[4:12])
    if nanosec >= 1_000_000_000:
        return None
    return sec + nanosec * 1e-9


def rate_from_times(times: Iterable[float]) -> float | None:
    """1 / median positive interval of the sorted ``times`` (seconds); None if none.

    Sorted, so that a stray value (the bytes of a message that is not an image, read as a stamp)
    changes at most the two intervals beside it, not the median.
    """
    t = np.sort(np.asarray(list(times), dtype=np.float64))
    if t.size < 2:
        return None
    steps = np.diff(t)
    steps = steps[steps > 0]
    if steps.size < max(1, (t.size - 1) // 2):  # most messages share a time: not a clock
        return None
    rate = 1.0 / float(np.median(steps))
    return rate if MIN_FPS <= rate <= MAX_FPS else None


def estimate_fps(samples: list[tuple[int, bytes]], where: str) -> float:
    """The topic's rate from up to :data:`SAMPLE` ``(receive time ns, raw CDR)`` messages.

    Header stamps first, else receive times, else :data:`DEFAULT_FPS` with a warning naming
    ``where``.
    """
    stamps = [cdr_header_stamp(raw) for _, raw in samples]
    rate = rate_from_times(s for s in stamps if s is not None)
    if rate is None:
        rate = rate_from_times(t * 1e-9 for t, _ in samples)
    if rate is None:
        if len(samples) > 1:
            LOG.warning("%s: neither header stamps nor receive times give a frame rate within "
                        "%s-%s fps; using %s fps", where, MIN_FPS, MAX_FPS, DEFAULT_FPS)
        return DEFAULT_FPS
    return rate


__all__ = ["DEFAULT_FPS", "MAX_FPS", "SAMPLE", "cdr_header_stamp", "estimate_fps",
           "rate_from_times"]
