"""The demo's verdict: did the recognizer keep up with the camera, and if not, why (measured).

Kept up means DESIGN §4's real-time bar: at least ``MIN_PROCESSED`` of the published frames
processed and latency p95 at most ``MAX_P95_MS``. Where it did not, the reason comes from what
the run measured: the recognizer's time per frame (wall and its thread's CPU) against the frame
period, the busiest thread of this process, and how busy the whole machine was (other
processes included).
"""

from __future__ import annotations

import os
from pathlib import Path

MIN_PROCESSED = 0.95
MAX_P95_MS = 150.0


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0, 0.0
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields) - idle) / tick, sum(fields) / tick


def verdict(published: int, stats: dict, fps: float, threads: dict[str, float], wall_s: float,
            machine_busy_s: float, cores: int) -> tuple[bool, str]:
    """``(kept_up, one line)`` for a run.

    Args:
        published: frames the replay published.
        stats: the node's ``NodeStats.snapshot()`` at the end of the run.
        fps: the replay rate.
        threads: CPU seconds per thread of this process during the run (``ThreadCpu.stop``).
        wall_s: duration of the run (s).
        machine_busy_s: CPU seconds the whole machine was busy during the run (all processes).
        cores: CPU cores of the machine.
    """
    processed = int(stats["frames_processed"])
    share = processed / published if published else 0.0
    p50, p95 = float(stats["latency_p50_ms"]), float(stats["latency_p95_ms"])
    head = (f"processed {processed}/{published} ({share:.1%}), latency p50 {p50:.0f} ms / "
            f"p95 {p95:.0f} ms")
    if share >= MIN_PROCESSED and p95 <= MAX_P95_MS:
        return True, f"kept up: {head}"
    pushed = int(stats.get("frames_pushed", 0))
    wall_ms = 1e3 * float(stats.get("inference_s_total", 0.0)) / max(pushed, 1)
    cpu_ms = 1e3 * float(stats.get("inference_cpu_s_total", 0.0)) / max(pushed, 1)
    period_ms = 1e3 / fps
    ours = sum(threads.values())
    busiest = max(threads.items(), key=lambda kv: kv[1], default=("none", 0.0))
    reasons = [f"the recognizer took {wall_ms:.0f} ms per frame ({cpu_ms:.0f} ms of it on the "
               f"CPU) for a frame every {period_ms:.0f} ms"]
    if wall_ms > period_ms and cpu_ms > 0.6 * wall_ms:
        reasons.append("inference is slower than the camera")
    elif cpu_ms < 0.6 * wall_ms:
        reasons.append("the inference thread waited for a core or the GIL")
    reasons.append(f"busiest thread: {busiest[0]} ({100 * busiest[1] / wall_s:.0f}% of a core)")
    others = max(0.0, machine_busy_s - ours)
    reasons.append(f"machine {100 * machine_busy_s / (wall_s * cores):.0f}% busy over {cores} "
                   f"cores, other processes {100 * others / wall_s:.0f}% of a core")
    return False, f"did NOT keep up: {head}; " + "; ".join(reasons)


__all__ = ["MAX_P95_MS", "MIN_PROCESSED", "machine_cpu_seconds", "verdict"]
