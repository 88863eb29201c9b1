"""Level and message of the node's diagnostics: does the node do its job, and if not, why.

Checked in this order (the first that applies sets the status):

1. WARN: most frames are lost in transport (the middleware reports lost samples faster than
   frames arrive).
2. WARN "stale": no input (no message at all, input is counted on arrival) for
   ``stale_timeout_s``.
3. WARN: messages arrive but every one of the sliding window was rejected; the message names the
   reason key and the last rejection.
4. WARN: frames arrive but nothing was published for ``no_output_timeout_s``; the message says
   why: recognizer resets (with the last reset's kind and message), frames refused by the
   recognizer, frames dropped before inference, or a model window still filling.
5. WARN: more than ``drop_ratio`` of the frames of the sliding window were dropped from the
   queue (inference slower than the camera).
6. OK, with the last rejection when there was one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from diagnostic_msgs.msg import DiagnosticStatus

TRANSPORT_HINT = ("most frames are lost in transport (large frames, best-effort QoS): run the "
                  "camera with config/fastdds.xml (FASTDDS_DEFAULT_PROFILES_FILE), set "
                  "input_reliability to reliable or use compressed images")


@dataclass(frozen=True)
class Thresholds:
    """When the status turns WARN.

    Attributes:
        stale_timeout_s: no input for this long.
        no_output_timeout_s: input but no output for this long.
        drop_ratio: dropped / received frames over the window above this.
        min_frames: the drop ratio is judged only over at least this many frames.
    """

    stale_timeout_s: float = 3.0
    no_output_timeout_s: float = 10.0
    drop_ratio: float = 0.5
    min_frames: int = 10


def _why_no_output(v: Mapping, window_s: float) -> str:
    """The most likely reason frames arrive but no output is published."""
    if v["resets_in_window"]:
        return (f"{v['resets_in_window']} recognizer resets in the last {window_s:.0f} s "
                f"(last: {v['last_reset']})")
    if v.get("rejected_recognizer") or v.get("rejected_inference_error"):
        return f"frames refused by the recognizer (last: {v['last_error']})"
    if v["drop_ratio"] > 0.5:
        return f"{v['drop_ratio']:.0%} of frames dropped before inference"
    return "no complete model window yet (frame rate too low or inference too slow)"


def assess(v: Mapping, th: Thresholds, window_s: float) -> tuple[bytes | int, str]:
    """Return ``(level, message)`` for a :meth:`NodeStats.snapshot` ``v``."""
    if v["lost_rate_hz"] > max(1.0, v["input_rate_hz"]):
        return DiagnosticStatus.WARN, TRANSPORT_HINT
    if v["seconds_since_input"] > th.stale_timeout_s:
        return DiagnosticStatus.WARN, f"stale: no input for {v['seconds_since_input']:.1f} s"
    rejected, arrived = v.get("rejected_in_window", 0), v.get("messages_in_window", 0)
    if arrived and rejected >= arrived:
        return (DiagnosticStatus.WARN, f"input arrives but all {rejected} frames of the last "
                f"{window_s:.0f} s were rejected ({v['last_rejection_reason']}): "
                f"{v['last_error']}")
    if v["seconds_without_output"] > th.no_output_timeout_s:
        return (DiagnosticStatus.WARN, f"no output for {v['seconds_without_output']:.1f} s "
                f"while frames arrive: {_why_no_output(v, window_s)}")
    if v["inputs_in_window"] >= th.min_frames and v["drop_ratio"] > th.drop_ratio:
        return (DiagnosticStatus.WARN, f"{v['drop_ratio']:.0%} of frames dropped in the last "
                f"{window_s:.0f} s: inference is slower than the camera (raise stride, use a "
                f"faster backend or lower the frame rate)")
    if v["rejected_frames"] and v["last_error"]:
        return DiagnosticStatus.OK, f"running; last rejected frame: {v['last_error']}"
    return DiagnosticStatus.OK, "running"


__all__ = ["Thresholds", "assess"]
