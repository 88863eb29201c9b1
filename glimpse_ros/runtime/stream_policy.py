"""When a new frame continues the current sequence, is dropped, or starts a new one.

The streaming recognizer keeps state across frames (DESIGN §3); this module decides, from the
frame stamps alone, what to do with each new frame:

- stamp older than the previous frame by at most ``jitter_s`` (e.g. a driver whose stamps step
  back 1 ms now and then): the frame is **dropped** and counted; the sequence goes on.
- stamp older by more than ``jitter_s`` (a replay that loops, a clock reset): **reset**,
  kind :attr:`ResetKind.TIME_JUMP`.
- stamp newer by more than ``max_gap_s``: **reset**, kind :attr:`ResetKind.GAP`.
- anything else continues the sequence.

A change of the source frame size never resets: every frame is resized to the model input
(``resize_size``, then the centre crop) whatever its size, and the boxes of each frame are mapped
back with that frame's own size; the recognizer only counts size changes.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass


# Stamps are float seconds: a step of exactly ``jitter_s`` may differ from it by rounding.
STAMP_EPS_S = 1e-9


class ResetKind(str, enum.Enum):
    """Why the recognizer started a new sequence (a bounded key set for counters)."""

    REQUESTED = "requested"  # reset() called by the user (e.g. the node's ~/reset service)
    TIME_JUMP = "time_jump"  # stamp went backwards by more than the jitter tolerance
    GAP = "gap"  # no frame for longer than max_gap_s


class Action(enum.Enum):
    """What to do with a new frame."""

    CONTINUE = "continue"
    DROP = "drop"
    RESET = "reset"


@dataclass(frozen=True)
class Decision:
    """Outcome of :func:`decide`: the action and, for a reset, its kind and message."""

    action: Action
    kind: ResetKind | None = None
    message: str = ""


CONTINUE = Decision(Action.CONTINUE)


def decide(last_stamp: float | None, stamp: float, max_gap_s: float,
           jitter_s: float) -> Decision:
    """Classify a frame stamped ``stamp`` following a frame stamped ``last_stamp`` (s).

    Args:
        last_stamp: stamp of the previous accepted frame; None at the start of a sequence.
        stamp: stamp of the new frame (finite).
        max_gap_s: a larger forward step starts a new sequence.
        jitter_s: a backwards step up to this size drops the frame instead of resetting.

    Raises:
        ValueError: on a non-finite stamp or tolerance.
    """
    if not (math.isfinite(stamp) and math.isfinite(max_gap_s) and math.isfinite(jitter_s)):
        raise ValueError(f"stamp and tolerances must be finite, got stamp={stamp}, "
                         f"max_gap_s={max_gap_s}, jitter_s={jitter_s}")
    if last_stamp is None:
        return CONTINUE
    step = stamp - last_stamp
    if step < 0:
        if -step <= jitter_s + STAMP_EPS_S:
            return Decision(Action.DROP)
        return Decision(Action.RESET, ResetKind.TIME_JUMP,
                        f"time jumped backwards ({last_stamp:.3f} -> {stamp:.3f})")
    if step > max_gap_s:
        return Decision(Action.RESET, ResetKind.GAP, f"gap of {step:.3f}s > max_gap_s")
    return CONTINUE


def reset_kind(kind: ResetKind | str) -> tuple[ResetKind, str]:
    """Normalise a reset argument: a kind (or its value), or free text counted as requested.

    Returns:
        ``(kind, message)``; the message is the free text, or "" for a kind.
    """
    if isinstance(kind, ResetKind):
        return kind, ""
    try:
        return ResetKind(str(kind)), ""
    except ValueError:
        return ResetKind.REQUESTED, str(kind)[:200]


__all__ = ["Action", "Decision", "ResetKind", "decide", "reset_kind"]
