"""Diagnostics say why nothing works: no output, drops, resets, impossible stamps (fake clock)."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("diagnostic_msgs")

from glimpse_ros.ros.diagnostics import NodeStats  # noqa: E402
from glimpse_ros.ros.sequence_gaps import SequenceGaps  # noqa: E402
from glimpse_ros.runtime.stream_policy import ResetKind  # noqa: E402

OK, WARN = 0, 1  # diagnostic_msgs/DiagnosticStatus levels


class Clock:
    """Manually advanced monotonic clock."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def make(**kw) -> tuple[NodeStats, Clock]:
    clock = Clock()
    return NodeStats(stale_timeout_s=3.0, no_output_timeout_s=4.0, clock=clock, **kw), clock


def level(stats: NodeStats) -> int:
    lvl = stats.status().level
    return int.from_bytes(lvl, "little") if isinstance(lvl, bytes) else int(lvl)


def test_frames_in_but_no_output_warns_with_the_reset_kind() -> None:
    """30 fps input, every frame resets (time jump): OK for 4 s, then WARN naming the reset."""
    stats, clock = make()
    for i in range(150):  # 5 s at 30 fps
        clock.t += 1 / 30
        stats.record_input()
        stats.set_resets({ResetKind.TIME_JUMP: i + 1}, "time jumped backwards (2.000 -> 1.999)")
        if i == 100:  # 3.4 s without output: still OK
            assert level(stats) == OK
    status = stats.status()
    assert level(stats) == WARN
    assert "no output for" in status.message and "time jumped backwards" in status.message
    assert "resets in the last" in status.message


def test_output_again_clears_the_warning_and_a_stale_camera_restarts_the_clock() -> None:
    """An output resets the no-output timer; after a stale period the wait starts again."""
    stats, clock = make()
    for _ in range(150):
        clock.t += 1 / 30
        stats.record_input()
    assert level(stats) == WARN
    stats.record_processed(0.05, stamp_s=1000.0)
    assert level(stats) == OK
    clock.t += 10.0  # camera stops: stale
    assert "stale" in stats.status().message
    for _ in range(30):  # one second of frames again: not yet "no output"
        clock.t += 1 / 30
        stats.record_input()
    assert level(stats) == OK, stats.status().message


def test_high_drop_ratio_warns() -> None:
    """85 % of the frames of the window dropped from the queue: WARN saying so."""
    stats, clock = make()
    for i in range(100):
        clock.t += 0.01
        stats.record_input()
        if i % 20 < 17:
            stats.record_dropped(1)
        else:
            stats.record_processed(0.05, stamp_s=1000.0)
    status = stats.status()
    assert level(stats) == WARN and "85% of frames dropped" in status.message
    assert stats.snapshot()["drop_ratio"] == pytest.approx(0.85)


@pytest.mark.parametrize("latency,stamp", [(1.8e9, 0.0), (-30.0, 2e9), (3600.0, 1e9),
                                           (float("nan"), 1e9)])
def test_impossible_stamps_are_counted_not_mixed_into_latency(latency, stamp) -> None:
    """Stamp 0, a stamp 30 s in the future or an hour old: counted apart; p95 from the rest."""
    stats, clock = make()
    for _ in range(10):
        clock.t += 0.1
        stats.record_input()
        stats.record_processed(0.040, stamp_s=1e9)
    stats.record_processed(latency, stamp_s=stamp)
    snap = stats.snapshot()
    assert snap["stamps_out_of_range"] == 1 and snap["frames_processed"] == 11
    assert snap["latency_p95_ms"] == pytest.approx(40.0)


def test_reset_record_stays_bounded() -> None:
    """50k resets reported by kind: the stats hold one entry per kind and the last message."""
    stats, clock = make()
    for i in range(50_000):
        clock.t += 0.001
        stats.set_resets({ResetKind.TIME_JUMP: i // 2 + 1, ResetKind.GAP: (i + 1) // 2},
                         f"reset {i}")
    snap = stats.snapshot()
    assert snap["resets"] == 50_000 and snap["last_reset"] == "reset 49999"
    assert len(stats.reset_reasons) == 2
    assert len(stats._reset_events) <= 5000 + 1  # one per update within the 5 s window


def test_sequence_gaps_count_undelivered_messages_per_publisher() -> None:
    """Sequence 1, 2, 5 from one publisher and 1, 3 from another: 2 + 1 skipped."""
    gaps = SequenceGaps(max_publishers=2)
    a, b = {"data": b"a" * 16}, {"data": b"b" * 16}
    skipped = [gaps.update({"publication_sequence_number": n, "publisher_gid": gid})
               for n, gid in ((1, a), (2, a), (1, b), (5, a), (3, b))]
    assert skipped == [0, 0, 0, 2, 1]
    assert gaps.update({"publication_sequence_number": 1, "publisher_gid": a}) == 0  # restart
    assert gaps.update({"publication_sequence_number": 2**64 - 1, "publisher_gid": a}) == 0
    gaps.update({"publication_sequence_number": 1, "publisher_gid": {"data": b"c" * 16}})
    assert len(gaps) == 2


@pytest.mark.parametrize("encoding, pixels, reason", [("32FC1", 4096 * 4096, "encoding"),
                                                      ("rgb8", 1, "too_large")])
def test_input_counted_on_arrival_and_rejections_named(encoding, pixels, reason) -> None:
    """12 s of 30 Hz frames, every one refused: not 'stale'; WARN naming the reason and cause.

    Real Image messages through the node's input callback (FrameInput) into its statistics.
    """
    import numpy as np
    import rclpy.logging
    from sensor_msgs.msg import Image

    from glimpse_ros.config import NodeConfig
    from glimpse_ros.ros.frame_input import FrameInput

    stats, clock = make()
    config = NodeConfig(max_frame_pixels=pixels)
    inp = FrameInput(stats, rclpy.logging.get_logger("test_health"), lambda: config, "image")
    channels = 4 if encoding == "32FC1" else 3
    msg = Image(height=4, width=6, encoding=encoding, step=6 * channels,
                data=np.zeros(4 * 6 * channels, np.uint8).tobytes())
    for _ in range(360):
        clock.t += 1 / 30
        inp.on_image(msg)
    snap = stats.snapshot()
    assert snap["messages_received"] == 360 and snap["frames_received"] == 0
    assert snap["seconds_since_input"] < 0.1 and snap[f"rejected_{reason}"] == 360
    status = stats.status()
    assert level(stats) == WARN and "stale" not in status.message
    assert re.search(rf"all 15\d frames of the last 5 s were rejected \({reason}\)",
                     status.message), status.message
    assert (encoding if reason == "encoding" else "max_frame_pixels") in status.message
    clock.t += 10.0  # the camera stops: now stale
    assert "stale: no input for 10.0 s" in stats.status().message


def test_some_rejections_keep_ok_with_the_last_one() -> None:
    """Accepted frames among rejected ones: OK, the last rejection quoted."""
    stats, clock = make()
    for i in range(60):
        clock.t += 1 / 30
        stats.record_message()
        if i % 3:
            stats.record_input()
            stats.record_processed(0.05, stamp_s=1000.0)
        else:
            stats.record_rejected("truncated", "data has 3 bytes")
    status = stats.status()
    assert level(stats) == OK and "last rejected frame: data has 3 bytes" in status.message
