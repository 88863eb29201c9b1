"""Reliability scenarios against a node process over DDS: fuzz, stale camera, replay loop, load.

Each function drives a running :class:`~glimpse_ros.tools.reliability_harness.NodeProcess` through
a :class:`~glimpse_ros.tools.reliability_harness.Probe` and returns plain numbers (JSON-ready); the
tests and ``python -m glimpse_ros.tools.reliability`` assert on / report them.
"""

from __future__ import annotations

import collections
import time
from typing import Any

import numpy as np

from glimpse_ros.ros.image_message import rgb_to_image
from glimpse_ros.ros.service_client import matched_client
from glimpse_ros.tools.reliability_fuzz import FuzzCase, FuzzGenerator, scan_bomb_jpeg
from glimpse_ros.tools.reliability_harness import NodeProcess, Probe


def expected_outputs(valid_frames: int, frames: int, stride: int) -> int:
    """Frames a fresh recognizer outputs for ``valid_frames`` frames (window T, stride s)."""
    if valid_frames < frames:
        return 0
    return frames + stride * ((valid_frames - frames) // stride)


def _send_lockstep(probe: Probe, msg: Any, timeout: float) -> bool:
    """Publish ``msg`` and wait until the node's diagnostics show it was handled (True) or not."""
    before = probe.seen()
    probe.publish(msg)
    try:
        probe.wait_for(lambda: probe.seen() > before, timeout, "message handled", poll=0.005)
    except TimeoutError:
        return False
    return True


def run_fuzz(probe: Probe, node: NodeProcess, gen: FuzzGenerator, num_malformed: int,
             frames: int, stride: int, timeout_s: float = 2.0) -> dict[str, Any]:
    """Publish ``num_malformed`` malformed messages with valid frames among them; account for all.

    Messages go one at a time: the next is published once the node's diagnostics count the
    previous one (converted or rejected), so the node's depth-1 best-effort subscription is never
    overrun. A message the node never reports within ``timeout_s`` was lost in transport; it is
    listed, and the expected counts are those of the messages the node did receive. Valid frames
    are topped up so that every received one falls in a completed window.
    """
    cases = gen.sequence(num_malformed)
    start_seen, start_done = probe.seen(), probe.value("frames_processed")
    start_rej = collections.Counter({k: probe.value(f"rejected_{k}") for k in
                                     {c.expected for c in cases if c.expected}})
    start_labels = len(probe.labels)
    received: list[FuzzCase] = []
    lost: list[str] = []
    t0 = time.monotonic()
    valid = 0
    queue = list(cases)
    while queue or valid < frames or (valid - frames) % stride:
        case = queue.pop(0) if queue else FuzzCase(gen.valid(), "valid", None)
        if _send_lockstep(probe, case.msg, timeout_s):
            received.append(case)
            valid += case.expected is None
        else:
            lost.append(case.kind)
    publish_s = time.monotonic() - t0
    want = expected_outputs(valid, frames, stride)
    try:
        probe.wait_for(lambda: probe.value("frames_processed") - start_done >= want
                       and len(probe.labels) - start_labels >= want, 60, "valid frames processed")
    except TimeoutError:
        pass  # reported below
    time.sleep(0.5)  # a few more diagnostics periods, so late counts would show
    expected = collections.Counter(c.expected for c in received if c.expected)
    counted = {k: int(probe.value(f"rejected_{k}") - start_rej[k]) for k in expected}
    return {
        "published": len(received) + len(lost),
        "malformed": sum(expected.values()),
        "valid_frames": valid,
        "accepted_mutations": sum(c.expected is None and c.kind != "valid" for c in received),
        "mutations": dict(collections.Counter(c.kind for c in received if c.kind != "valid")),
        "rejected_expected": dict(expected),
        "rejected_counted": counted,
        "rejections_counted_total": sum(counted.values()),
        "seen_by_node": probe.seen() - start_seen,
        "lost_in_transport": len(lost),
        "lost_kinds": lost,
        "outputs_expected": want,
        "frames_processed": int(probe.value("frames_processed") - start_done),
        "labels_received": len(probe.labels) - start_labels,
        "publish_s": round(publish_s, 2),
        "node_alive": node.alive(),
        "other_errors": int(probe.value("rejected_recognizer") +
                            probe.value("rejected_inference_error")),
    }


def frame_msg(rng: np.random.Generator, width: int, height: int):
    """A random rgb8 Image."""
    return rgb_to_image(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def stream(probe: Probe, seconds: float, fps: float, width: int = 32, height: int = 24) -> int:
    """Publish random frames at ``fps`` for ``seconds``; return how many."""
    rng = np.random.default_rng(0)
    count, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        probe.publish(frame_msg(rng, width, height))
        count += 1
        time.sleep(1.0 / fps)
    return count


def run_stale(probe: Probe, stale_timeout_s: float, fps: float = 20.0) -> dict[str, Any]:
    """Camera runs, stops, comes back: diagnostics OK -> WARN (stale) -> OK, with the delays."""
    stream(probe, 1.0, fps)
    probe.wait_for(lambda: probe.level == 0, 10, "diagnostics OK while streaming")
    stopped = time.monotonic()
    warn_after = probe.wait_for(lambda: probe.level == 1, stale_timeout_s + 10, "stale WARN")
    warn_message = probe.message
    stream(probe, 0.2, fps)
    resumed = time.monotonic()
    ok_after = probe.wait_for(lambda: probe.level == 0, 10, "diagnostics OK again")
    ok_after = time.monotonic() - resumed if ok_after else 0.0
    return {"stale_timeout_s": stale_timeout_s, "warn_after_stop_s": round(warn_after, 2),
            "warn_message": warn_message, "ok_after_resume_s": round(ok_after, 2),
            "stopped_at": stopped}


def run_loop_replay(probe: Probe, node: NodeProcess, frames: int = 24, loops: int = 2,
                    fps: float = 20.0) -> dict[str, Any]:
    """Replay the same stamped clip ``loops`` times (time goes backwards at each restart).

    Returns the number of node log lines mentioning the backwards jump (one per restart
    expected) and the labels received per loop.
    """
    rng = np.random.default_rng(3)
    base = probe.node.get_clock().now().nanoseconds * 1e-9
    per_loop = []
    for _ in range(loops):
        before = len(probe.labels)
        for i in range(frames):
            msg = frame_msg(rng, 32, 24)
            stamp = base + i / fps
            msg.header.stamp.sec, msg.header.stamp.nanosec = int(stamp), int(stamp % 1 * 1e9)
            probe.pub.publish(msg)
            time.sleep(1.0 / fps)
        time.sleep(1.0)
        per_loop.append(len(probe.labels) - before)
    time.sleep(0.5)
    lines = [ln for ln in node.log().splitlines() if "backwards" in ln]
    return {"loops": loops, "restarts": loops - 1, "reset_log_lines": len(lines),
            "log_lines": lines[:5], "labels_per_loop": per_loop, "node_alive": node.alive()}


def run_scan_bombs(probe: Probe, node: NodeProcess, seconds: float = 4.0, rate_hz: float = 4.0,
                   width: int = 4096, height: int = 4096, extra_scans: int = 2000
                   ) -> dict[str, Any]:
    """Publish progressive-JPEG scan bombs at ``rate_hz`` while calling ``~/reset`` in a loop.

    Returns the bombs sent and counted as rejected, the slowest ``~/reset`` response and the
    longest gap between two /diagnostics messages of the node during the run (seconds).
    """
    from sensor_msgs.msg import CompressedImage
    from std_srvs.srv import Trigger

    data = scan_bomb_jpeg(width, height, extra_scans)
    # Reset until one answer arrives (the response path is matched then; see service_client):
    # a Trigger has no side-effect-free request, and one more reset before the run is harmless.
    client = matched_client(probe.node, Trigger, f"/{node.name}/reset", Trigger.Request(), 20.0)
    rejected0 = probe.value("rejected_too_many_scans")
    start = time.monotonic()
    sent, responses, timeouts = 0, [], 0
    next_bomb = start
    while time.monotonic() - start < seconds:
        if time.monotonic() >= next_bomb:
            probe.publish(CompressedImage(format="jpeg", data=data))
            sent += 1
            next_bomb += 1.0 / rate_hz
        t0 = time.monotonic()
        future = client.call_async(Trigger.Request())
        while not future.done() and time.monotonic() - t0 < 5.0:
            time.sleep(0.005)
        if future.done():
            responses.append(time.monotonic() - t0)
        else:
            timeouts += 1
            future.cancel()
        time.sleep(0.05)
    end = time.monotonic()
    time.sleep(0.5)
    arrivals = [t for t, _, _ in probe.history if start <= t <= end]
    gaps = np.diff([start] + arrivals + [end]) if arrivals else np.array([end - start])
    probe.node.destroy_client(client)
    return {"width": width, "height": height, "scans": extra_scans + 10, "bytes": len(data),
            "bombs_sent": sent,
            "rejected_too_many_scans": int(probe.value("rejected_too_many_scans") - rejected0),
            "reset_calls": len(responses) + timeouts, "reset_timeouts": timeouts,
            "reset_response_max_s": round(max(responses), 3) if responses else None,
            "diagnostics_gap_max_s": round(float(gaps.max()), 3),
            "node_alive": node.alive()}


def run_churn(probe: Probe, node: NodeProcess, frames: int = 40, fps: float = 20.0
              ) -> dict[str, Any]:
    """Streams that used to yield nothing: size alternating, stamps stepping back 1 ms.

    First the frame size alternates every frame, then (after a gap, so a new sequence) every
    third stamp is 1 ms older than its predecessor. Returns the labels received for each.
    """
    rng = np.random.default_rng(9)
    base = probe.node.get_clock().now().nanoseconds * 1e-9
    out: dict[str, Any] = {}
    jitter0 = probe.value("jitter_dropped")
    for case in ("alternating_size", "stamp_jitter"):
        before, stamp = len(probe.labels), base
        for i in range(frames):
            size = (32, 24) if case == "stamp_jitter" or i % 2 == 0 else (40, 30)
            msg = frame_msg(rng, *size)
            stamp = stamp - 0.001 if case == "stamp_jitter" and i % 3 == 2 else base + i / fps
            msg.header.stamp.sec, msg.header.stamp.nanosec = int(stamp), int(stamp % 1 * 1e9)
            probe.pub.publish(msg)
            time.sleep(1.0 / fps)
        time.sleep(1.5)
        out[f"{case}_labels"] = len(probe.labels) - before
        base += frames / fps + 10.0  # next case: a gap, so a new sequence
    out["jitter_dropped"] = int(probe.value("jitter_dropped") - jitter0)
    out["size_changes"] = int(probe.value("size_changes"))
    out["node_alive"] = node.alive()
    return out


def run_overload(probe: Probe, node: NodeProcess, width: int, height: int, fps: float,
                 seconds: float, warmup_s: float) -> dict[str, Any]:
    """Publish ``width`` x ``height`` rgb8 at ``fps`` for ``seconds``; sample RSS and diagnostics.

    RSS growth is measured from the end of the warm-up to the end of the run.
    """
    rng = np.random.default_rng(5)
    pool = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(4)]
    msgs = [rgb_to_image(p) for p in pool]  # reused: building a 6 MB message costs ms
    rss, p95s, sent = [], [], 0
    start = time.monotonic()
    next_t, next_sample = start, start
    rss_warm = None
    while (now := time.monotonic()) - start < seconds:
        if now >= next_sample:
            rss.append((round(now - start, 1), node.rss_mb()))
            if now - start >= warmup_s and rss_warm is None:
                rss_warm = rss[-1][1]
            lat = probe.value("latency_p95_ms", float("nan"))
            if now - start >= warmup_s and lat == lat:
                p95s.append(lat)
            next_sample += 1.0
        probe.publish(msgs[sent % len(msgs)])
        sent += 1
        next_t += 1.0 / fps
        time.sleep(max(0.0, next_t - time.monotonic()))
    elapsed = time.monotonic() - start
    time.sleep(1.5)
    rss_end = node.rss_mb()
    return {"width": width, "height": height, "target_fps": fps, "seconds": round(elapsed, 1),
            "published": sent, "published_fps": round(sent / elapsed, 1),
            "seen_by_node": probe.seen(), "frames_received": int(probe.value("frames_received")),
            "frames_processed": int(probe.value("frames_processed")),
            "dropped_frames": int(probe.value("dropped_frames")),
            "processed_fps": round(probe.value("frames_processed") / elapsed, 2),
            "lost_in_transport": sent - probe.seen(),
            "latency_p95_ms_first": round(p95s[0], 1) if p95s else None,
            "latency_p95_ms_max": round(max(p95s), 1) if p95s else None,
            "latency_p95_ms_last": round(p95s[-1], 1) if p95s else None,
            "latency_p95_ms_every_5s": [round(x, 1) for x in p95s[::5]],
            "rss_mb_after_warmup": round(rss_warm, 1) if rss_warm else None,
            "rss_mb_end": round(rss_end, 1), "rss_mb_max": round(max(r for _, r in rss), 1),
            "rss_growth_mb": round(rss_end - rss_warm, 1) if rss_warm else None,
            "rss_samples": rss, "node_alive": node.alive()}


__all__ = ["expected_outputs", "run_churn", "run_fuzz", "run_loop_replay", "run_overload",
           "run_scan_bombs", "run_stale", "stream"]
