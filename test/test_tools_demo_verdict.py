"""The demo's verdict from hand-made run figures: kept up, or not with the measured reason."""

from __future__ import annotations

from glimpse_ros.tools.demo_verdict import verdict

THREADS = {"inference": 3.0, "executor": 2.5, "replay": 0.4}


def stats(processed: int, p95: float, pushed: int = 300, wall_s: float = 3.0,
          cpu_s: float = 2.7) -> dict:
    return {"frames_processed": processed, "latency_p50_ms": 15.0, "latency_p95_ms": p95,
            "frames_pushed": pushed, "inference_s_total": wall_s, "inference_cpu_s_total": cpu_s}


def test_kept_up_needs_95_percent_and_p95_within_150_ms() -> None:
    """285 of 300 and p95 149 ms keeps up; 284 or p95 151 ms does not."""
    ok, text = verdict(300, stats(285, 149.0), 30.0, THREADS, 10.0, 14.0, 2)
    assert ok and text == "kept up: processed 285/300 (95.0%), latency p50 15 ms / p95 149 ms"
    assert not verdict(300, stats(284, 20.0), 30.0, THREADS, 10.0, 14.0, 2)[0]
    assert not verdict(300, stats(300, 151.0), 30.0, THREADS, 10.0, 14.0, 2)[0]


def test_slow_inference_is_named_with_its_time_and_the_frame_period() -> None:
    """50 ms per frame (45 on the CPU) at 30 fps: slower than the camera."""
    ok, text = verdict(300, stats(200, 400.0, 200, 10.0, 9.0), 30.0, THREADS, 10.0, 19.0, 2)
    assert not ok
    assert "the recognizer took 50 ms per frame (45 ms of it on the CPU) for a frame every " \
           "33 ms; inference is slower than the camera" in text
    assert "busiest thread: inference (30% of a core)" in text
    # 19 s busy of 20 core-seconds; this process 5.9 s, the others 13.1 s = 131% of a core
    assert "machine 95% busy over 2 cores, other processes 131% of a core" in text


def test_waiting_inference_thread_is_named() -> None:
    """30 ms per frame of which 6 ms on the CPU: the thread waited."""
    ok, text = verdict(300, stats(250, 300.0, 250, 7.5, 1.5), 30.0, THREADS, 10.0, 12.0, 2)
    assert not ok and "the inference thread waited for a core or the GIL" in text
