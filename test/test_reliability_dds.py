"""Reliability over real DDS: fuzzed input, camera dropout, looping replay, short overload.

Three node processes (raw images, compressed images, overload) start in parallel at module set-up
on a private ROS domain; the probe publishes from this process. The long versions of these runs
are in ``python -m glimpse_ros.tools.reliability`` (``make reliability``).
"""

from __future__ import annotations

import random
import time

import pytest

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("torch")
from glimpse_ros.tools.reliability_dds import (  # noqa: E402
    run_fuzz, run_loop_replay, run_overload, run_stale)
from glimpse_ros.tools.reliability_fuzz import FuzzGenerator  # noqa: E402
from glimpse_ros.tools.reliability_harness import NodeProcess, Probe, make_checkpoint  # noqa: E402

DOMAIN = random.randint(101, 200)  # the node e2e tests use 1..100
FRAMES, STRIDE = 8, 2
COMMON = {"backend": "torch", "num_threads": 1, "stride": STRIDE, "diagnostics_period_s": 0.2,
          "max_frame_pixels": 20000}


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    """Start the three node processes; stop them at the end."""
    tmp = tmp_path_factory.mktemp("reliability")
    ckpt = make_checkpoint(tmp / "small.safetensors", frames=FRAMES, crop_size=32,
                           resize_size=40)
    params = dict(COMMON, model_path=ckpt)
    procs = {
        "fuzz_raw": NodeProcess("fuzz_raw", DOMAIN, tmp / "raw.log",
                                dict(params, queue_size=4096, stale_timeout_s=1.0,
                                     image_topic="fuzz/image", diagnostics_period_s=0.05)),
        "fuzz_jpeg": NodeProcess("fuzz_jpeg", DOMAIN, tmp / "jpeg.log",
                                 dict(params, queue_size=4096, compressed=True,
                                      image_topic="fuzz/image", diagnostics_period_s=0.05)),
        "overload": NodeProcess("overload", DOMAIN, tmp / "overload.log",
                                dict(params, queue_size=2, image_topic="load/image",
                                     max_frame_pixels=320 * 240)),
    }
    yield procs
    for proc in procs.values():
        proc.stop()


def probe_for(node: NodeProcess, topic: str, compressed: bool = False) -> Probe:
    """A probe whose publisher is matched with the node's subscription."""
    probe = Probe(DOMAIN, node.name, compressed=compressed, image_topic=topic)
    try:
        probe.wait_for(lambda: probe.pub.get_subscription_count() > 0 or not node.alive(), 90,
                       "node subscription")
        probe.wait_for(lambda: bool(probe.diag) or not node.alive(), 10, "diagnostics")
    except TimeoutError:
        probe.close()
        raise
    assert node.alive(), node.log()
    time.sleep(0.5)  # let the node's reader finish matching the new writer
    return probe


@pytest.fixture(scope="module")
def raw(nodes):
    """Probe of the raw-image fuzz node."""
    probe = probe_for(nodes["fuzz_raw"], "fuzz/image")
    yield probe, nodes["fuzz_raw"]
    probe.close()


def check_fuzz(report: dict) -> None:
    """Nothing lost, every rejection counted under its reason, every valid frame labelled."""
    assert report["node_alive"]
    assert report["seen_by_node"] == report["published"] - report["lost_in_transport"]
    assert report["lost_in_transport"] <= report["published"] // 50, report  # best effort
    assert report["rejected_counted"] == report["rejected_expected"], report
    assert report["rejections_counted_total"] == report["malformed"]
    assert report["frames_processed"] == report["outputs_expected"], report
    assert report["labels_received"] == report["outputs_expected"], report
    assert report["other_errors"] == 0


def test_fuzz_raw_images_counted_and_valid_frames_processed(raw) -> None:
    """100 malformed Images of every mutation class among valid ones of random encodings."""
    probe, node = raw
    report = run_fuzz(probe, node, FuzzGenerator(11), 100, FRAMES, STRIDE)
    assert len(report["mutations"]) >= 8  # the mutation classes were all drawn
    check_fuzz(report)


def test_fuzz_compressed_images(nodes) -> None:
    """Garbage / truncated / bit-flipped / bomb-header JPEG and PNG messages."""
    node = nodes["fuzz_jpeg"]
    probe = probe_for(node, "fuzz/image", compressed=True)
    try:
        report = run_fuzz(probe, node, FuzzGenerator(12, compressed=True), 50, FRAMES, STRIDE)
    finally:
        probe.close()
    check_fuzz(report)


def test_camera_stops_diagnostics_stale_then_ok(raw) -> None:
    """No input for stale_timeout_s -> WARN 'stale'; frames again -> OK."""
    probe, node = raw
    report = run_stale(probe, stale_timeout_s=1.0)
    assert "stale" in report["warn_message"]
    assert 0.8 <= report["warn_after_stop_s"] <= 3.0, report
    assert report["ok_after_resume_s"] <= 2.0, report
    assert node.alive()


def test_looping_replay_resets_with_one_log_line(raw) -> None:
    """Each restart of a looping replay (time goes backwards) logs one line; labels keep coming."""
    probe, node = raw
    report = run_loop_replay(probe, node, frames=16, loops=2)
    assert report["node_alive"]
    assert report["reset_log_lines"] == report["restarts"], report
    assert all(n == 16 for n in report["labels_per_loop"]), report


@pytest.mark.slow
def test_overload_queue_bounded_drops_reported(nodes) -> None:
    """320x240 rgb8 at 60 fps for 8 s: drops are counted, latency and memory stay bounded."""
    node = nodes["overload"]
    probe = probe_for(node, "load/image")
    try:
        report = run_overload(probe, node, 320, 240, fps=60, seconds=8, warmup_s=3)
    finally:
        probe.close()
    assert report["node_alive"]
    received, processed = report["frames_received"], report["frames_processed"]
    assert processed > 0
    # every converted frame is processed, dropped, or still in the 2-frame queue / window
    assert received - processed - report["dropped_frames"] <= 2 + FRAMES, report
    assert report["latency_p95_ms_max"] < 2000, report
    assert report["latency_p95_ms_max"] < 2 * report["latency_p95_ms_first"] + 100  # not growing
    assert report["rss_growth_mb"] < 50, report
