"""Diagnostics WARN when processing stays below the input rate, naming why (fake clock)."""

from __future__ import annotations

import pytest

pytest.importorskip("diagnostic_msgs")

from glimpse_ros.ros.diagnostics import NodeStats  # noqa: E402
from test_ros_health import Clock  # noqa: E402

OK, WARN = 0, 1  # diagnostic_msgs/DiagnosticStatus levels


def run(seconds: float, skip_every: int, wall_s: float, cpu_s: float) -> NodeStats:
    """Stats of ``seconds`` of 30 fps input.

    Every ``skip_every``-th frame is dropped from the queue (0: none), the others are pushed
    (taking ``wall_s``, of it ``cpu_s`` on the CPU) and published.
    """
    clock = Clock()
    stats = NodeStats(stale_timeout_s=3.0, no_output_timeout_s=10.0, clock=clock)
    for i in range(round(seconds * 30)):
        clock.t += 1 / 30
        stats.record_input()
        if skip_every and i % skip_every == 0:
            stats.record_dropped(1)
            continue
        stats.record_inference(wall_s, cpu_s)
        stats.record_processed(0.02, stamp_s=1000.0)
    return stats


def level(stats: NodeStats) -> int:
    lvl = stats.status().level
    return int.from_bytes(lvl, "little") if isinstance(lvl, bytes) else int(lvl)


def test_keeping_up_is_ok_and_inference_times_are_reported() -> None:
    """Every frame processed in 12 ms (10 ms CPU): OK; the means are in the values."""
    stats = run(6.0, 0, 0.012, 0.010)
    assert level(stats) == OK, stats.status().message
    snap = stats.snapshot()
    assert snap["inference_ms"] == pytest.approx(12.0)
    assert snap["inference_cpu_ms"] == pytest.approx(10.0)


def test_behind_for_a_few_seconds_only_then_warns() -> None:
    """4 of 5 frames processed: OK for the first seconds, WARN "falling behind" after."""
    assert level(run(3.0, 5, 0.03, 0.008)) == OK
    stats = run(6.0, 5, 0.03, 0.008)
    status = stats.status()
    assert level(stats) == WARN and status.message.startswith("falling behind: 24.")


def test_starved_inference_thread_is_named() -> None:
    """30 ms per frame of which 8 ms CPU: the thread waited for a core or the GIL."""
    message = run(6.0, 5, 0.030, 0.008).status().message
    assert "inference takes 30 ms per frame (8 ms of it on the CPU)" in message
    assert "frame every 33 ms" in message and "waits for a core or the GIL" in message


def test_inference_slower_than_the_frame_period_is_named() -> None:
    """90 ms of CPU per frame at 30 fps: two of three frames dropped, the cause is the model."""
    slow = run_slow()
    assert level(slow) == WARN
    message = slow.status().message
    assert "67% of frames dropped" in message
    assert "inference takes 90 ms per frame (85 ms of it on the CPU) for a frame every 33 ms: " \
           "raise stride" in message


def run_slow() -> NodeStats:
    """Only every third frame gets through, each taking 90 ms (85 ms CPU)."""
    clock = Clock()
    stats = NodeStats(clock=clock)
    for i in range(180):
        clock.t += 1 / 30
        stats.record_input()
        if i % 3:
            stats.record_dropped(1)
        else:
            stats.record_inference(0.090, 0.085)
            stats.record_processed(0.1, stamp_s=1000.0)
    return stats


def test_fast_inference_with_queue_drops_names_the_scheduling() -> None:
    """10 ms per frame, all on the CPU, yet one frame in five dropped: not the model's speed."""
    message = run(6.0, 5, 0.010, 0.009).status().message
    assert message.startswith("falling behind")
    assert "frames dropped from the queue although inference takes 10 ms" in message
    assert "not scheduled often enough" in message
