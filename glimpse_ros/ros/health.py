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
   queue; the message names the cause (:func:`why_behind`).
6. WARN "falling behind": over a whole window (input for at least ``behind_after_s``) fewer than
   ``1 - behind_tolerance`` of the input rate was processed; the message names the cause:
   inference time per frame vs the frame period, an inference thread that waited for the CPU
   (its CPU time well below its wall time), or frames dropped from the queue although inference
   is fast enough.
7. OK, with the last rejection when there was one.
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
        behind_tolerance: processed rate below ``(1 - this) * input rate`` is falling behind...
        behind_after_s: ...once input has covered this much of the window (a few seconds).
    """

    stale_timeout_s: float = 3.0
    no_output_timeout_s: float = 10.0
    drop_ratio: float = 0.5
    min_frames: int = 10
    behind_tolerance: float = 0.1
    behind_after_s: float = 4.0


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


# The inference thread "waited" when its CPU time is below this share of its wall time.
WAITED_CPU_SHARE = 0.6


def why_behind(v: Mapping) -> str:
    """Why frames are not all processed: inference time vs frame period, or a starved thread."""
    period_ms = 1e3 / v["input_rate_hz"] if v["input_rate_hz"] > 0 else float("nan")
    wall, cpu = v["inference_ms"], v["inference_cpu_ms"]
    if not wall == wall:  # nan: nothing reached the recognizer in the window
        return "no frame reached the recognizer in the window"
    timing = (f"inference takes {wall:.0f} ms per frame ({cpu:.0f} ms of it on the CPU) for a "
              f"frame every {period_ms:.0f} ms")
    starved = cpu < WAITED_CPU_SHARE * wall
    if wall > period_ms and not starved:
        return f"{timing}: raise stride, use a faster backend or lower the frame rate"
    if starved:
        return (f"{timing}: the inference thread waits for a core or the GIL (other threads of "
                f"this process or other processes); see num_threads and the executor")
    drops = round(v["drop_ratio"] * v["inputs_in_window"])
    return (f"{drops} frames dropped from the queue although {timing}: the inference thread "
            f"is not scheduled often enough (CPU shared with other threads or processes)")


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
                f"{window_s:.0f} s: {why_behind(v)}")
    pushed = v["inference_ms"] == v["inference_ms"]  # not nan: frames reached the recognizer
    behind = v["processed_rate_hz"] < (1 - th.behind_tolerance) * v["input_rate_hz"]
    if (pushed and behind and v["inputs_in_window"] >= th.min_frames
            and v["input_span_s"] >= th.behind_after_s):
        return (DiagnosticStatus.WARN, f"falling behind: {v['processed_rate_hz']:.1f} of "
                f"{v['input_rate_hz']:.1f} frames/s processed in the last {window_s:.0f} s: "
                f"{why_behind(v)}")
    if v["rejected_frames"] and v["last_error"]:
        return DiagnosticStatus.OK, f"running; last rejected frame: {v['last_error']}"
    return DiagnosticStatus.OK, "running"


__all__ = ["Thresholds", "WAITED_CPU_SHARE", "assess", "why_behind"]
