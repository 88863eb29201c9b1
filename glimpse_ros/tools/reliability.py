"""``python -m glimpse_ros.tools.reliability --out reliability.json`` (``make reliability``).

The long versions of the reliability tests: >= 1000 fuzzed messages over DDS, 2 minutes of 60 fps
1920x1080 rgb8 overload, a 10,000-frame stream-mode soak, fault injection and hostile inputs.
Hostile offline inputs (bags, image folders, videos through glimpse-annotate and replay), replay
arguments and SIGTERM during start-up are :mod:`glimpse_ros.tools.reliability_offline`,
lifecycle cycles under a streaming camera :mod:`glimpse_ros.tools.reliability_lifecycle`, run-time
integers for double parameters :mod:`glimpse_ros.tools.reliability_parameters`; ``--only`` with
one or more of ``offline lifecycle parameters`` runs just those. Writes every number to the JSON
file and prints the README table. Every node of the run is on the caller's ``ROS_DOMAIN_ID``
when it is set (a random one otherwise) and discovers peers on this host only.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from glimpse_ros.config import RecognizerConfig
from glimpse_ros.ros.discovery import domain_id, use_local_discovery
from glimpse_ros.tools import reliability_faults as faults
from glimpse_ros.tools import reliability_model_files as model_files
from glimpse_ros.tools.reliability_dds import (run_churn, run_fuzz, run_loop_replay, run_overload,
                                               run_scan_bombs, run_stale)
from glimpse_ros.tools.reliability_fuzz import FuzzGenerator
from glimpse_ros.tools.reliability_harness import NodeProcess, Probe, make_checkpoint
from glimpse_ros.tools.reliability_lifecycle import lifecycle_runs
from glimpse_ros.tools.reliability_offline import offline_runs
from glimpse_ros.tools.reliability_parameters import parameter_runs
from glimpse_ros.tools.reliability_table import readme_table

FRAMES, STRIDE = 8, 2
CLASSES = ("offline", "lifecycle", "parameters")  # --only names (all: these and the rest)
BAD_PARAMETERS = [("max_gap_s", math.nan), ("smoothing", 1.5), ("top_k", 0), ("stride", -2),
                  ("num_threads", -1), ("head_mode", "video"), ("backend", "cuda"),
                  ("precision", "int8"), ("stale_timeout_s", math.nan), ("queue_size", 0),
                  ("diagnostics_period_s", -1.0), ("marker_lifetime_s", math.nan),
                  ("max_frame_pixels", 0), ("input_reliability", "sometimes"),
                  ("image_topic", ""), ("image_topic", "bad topic!"),
                  ("camera_info_topic", "a//b"), ("stamp_jitter_s", -0.001),
                  ("no_output_timeout_s", 0.0), ("image_plane_frame_id", "/bad frame"),
                  ("strid", 3)]


def _probe(node: NodeProcess, domain: int, topic: str, compressed: bool = False) -> Probe:
    probe = Probe(domain, node.name, compressed=compressed, image_topic=topic)
    probe.wait_for(lambda: probe.pub.get_subscription_count() > 0 or not node.alive(), 120,
                   f"{node.name} subscription")
    probe.wait_for(lambda: bool(probe.diag) or not node.alive(), 20, "diagnostics")
    if not node.alive():
        raise RuntimeError(f"{node.name} died at start-up:\n{node.log()[-2000:]}")
    time.sleep(0.5)
    return probe


def dds_runs(tmp: Path, domain: int, malformed: int, overload_s: float) -> dict[str, Any]:
    """Fuzz (raw + compressed), stale camera and looping replay, then the overload run."""
    tiny = make_checkpoint(tmp / "tiny.safetensors", frames=FRAMES, crop_size=32, resize_size=40)
    common = {"model_path": tiny, "backend": "torch", "num_threads": 1, "stride": STRIDE,
              "max_frame_pixels": 20000, "queue_size": 64, "diagnostics_period_s": 0.02}
    raw = NodeProcess("fuzz_raw", domain, tmp / "raw.log",
                      dict(common, image_topic="fuzz/image", stale_timeout_s=1.0))
    jpeg = NodeProcess("fuzz_jpeg", domain, tmp / "jpeg.log",
                       dict(common, image_topic="fuzz/image", compressed=True))
    bomb = NodeProcess("bomb", domain, tmp / "bomb.log",
                       dict(common, image_topic="bomb/image", compressed=True,
                            max_frame_pixels=4096 * 4096, diagnostics_period_s=0.1))
    out: dict[str, Any] = {}
    try:
        probe = _probe(raw, domain, "fuzz/image")
        out["fuzz_raw"] = run_fuzz(probe, raw, FuzzGenerator(101), malformed * 2 // 3, FRAMES,
                                   STRIDE)
        out["stale"] = run_stale(probe, 1.0)
        out["loop_replay"] = run_loop_replay(probe, raw, frames=24, loops=3)
        out["churn"] = run_churn(probe, raw, frames=40)
        probe.close()
        probe = _probe(jpeg, domain, "fuzz/image", compressed=True)
        out["fuzz_compressed"] = run_fuzz(probe, jpeg, FuzzGenerator(102, compressed=True),
                                          malformed - malformed * 2 // 3, FRAMES, STRIDE)
        probe.close()
        probe = _probe(bomb, domain, "bomb/image", compressed=True)
        out["scan_bombs"] = run_scan_bombs(probe, bomb, seconds=20.0, rate_hz=4.0,
                                           extra_scans=20000)
        probe.close()
    finally:
        raw.stop()
        jpeg.stop()
        bomb.stop()
    out["overload"] = overload(tmp, domain, overload_s)
    return out


def window_timing(checkpoint: Path, width: int, height: int, stride: int) -> dict[str, float]:
    """In-process per-frame conversion+preprocess and per-window backbone+head times (ms)."""
    from glimpse_ros.ros.image_message import rgb_to_image
    from glimpse_ros.sources.image_decoding import image_to_rgb
    from glimpse_ros.runtime.recognizer import Recognizer

    rec = Recognizer(RecognizerConfig(backend="torch", num_threads=1, stride=stride), checkpoint)
    msg = rgb_to_image(np.random.default_rng(0).integers(0, 256, (height, width, 3), np.uint8))
    frame_ms, window_ms = [], []
    for i in range(8 * stride + rec.frames):
        t0 = time.perf_counter()
        frame = image_to_rgb(msg)
        if rec.push(frame, i / 60):
            window_ms.append(rec.timings["backbone"] + rec.timings["head"])
        frame_ms.append((time.perf_counter() - t0) * 1e3)
    return {"frame_ms": float(np.median(frame_ms)), "window_ms": float(np.median(window_ms))}


def overload(tmp: Path, domain: int, seconds: float, width: int = 1920, height: int = 1080,
             fps: float = 60.0, queue_size: int = 2, stride: int = 4) -> dict[str, Any]:
    """60 fps 1080p rgb8 into a node with the small default-size model (112x112 crops)."""
    ckpt = make_checkpoint(tmp / "small.safetensors", num_classes=8)
    timing = window_timing(ckpt, width, height, stride)
    # A frame waits behind at most queue_size queued frames and the window in progress, then for
    # the stride - 1 frames that complete its window, then for its own window.
    bound = ((queue_size + stride) * timing["frame_ms"] + 2 * timing["window_ms"])
    node = NodeProcess("overload", domain, tmp / "overload.log",
                       {"model_path": ckpt, "backend": "torch", "num_threads": 1,
                        "stride": stride, "queue_size": queue_size,
                        "input_reliability": "reliable", "image_topic": "load/image"})
    try:
        probe = _probe(node, domain, "load/image")
        report = run_overload(probe, node, width, height, fps, seconds, warmup_s=20)
        probe.close()
    finally:
        node.stop()
    # Under overload the node is saturated: each frame costs 1 / processed_fps of node time
    # (DDS receive of 6 MB, conversion, preprocessing, its share of a window) on a CPU shared with
    # the publisher. A frame waits behind the DDS reader's 1-frame history, the queue and its
    # window's stride frames.
    service_ms = 1e3 / max(report["processed_fps"], 1e-3)
    p95 = report["latency_p95_ms_every_5s"]
    loaded = (1 + queue_size + stride) * service_ms
    report.update(queue_size=queue_size, stride=stride, input_reliability="reliable",
                  frame_ms_in_process=round(timing["frame_ms"], 1),
                  window_ms_in_process=round(timing["window_ms"], 1),
                  latency_bound_compute_ms=round(bound, 1),
                  service_ms_under_load=round(service_ms, 1),
                  latency_bound_loaded_ms=round(loaded, 1),
                  latency_within_bound=bool(report["latency_p95_ms_max"] is not None
                                            and report["latency_p95_ms_max"] <= loaded),
                  latency_samples_within_bound=f"{sum(x <= loaded for x in p95)}/{len(p95)}")
    return report


def in_process_runs(tmp: Path, soak_frames: int, domain: int) -> dict[str, Any]:
    """Soak, cache faults, bad model files, label mismatch, bad parameters."""
    ckpt = make_checkpoint(tmp / "soak.safetensors", frames=FRAMES, crop_size=32, resize_size=40)
    out: dict[str, Any] = {"soak": faults.soak(ckpt, soak_frames, loops=4, stride=STRIDE)}
    out["corrupt_onnx_cache"] = faults.corrupt_onnx_cache(ckpt, tmp / "cache")
    out["corrupt_tensorrt_cache"] = faults.corrupt_tensorrt_cache(tmp / "trt")
    files, marker = model_files.malicious_pickles(tmp)
    starts = {"missing": tmp / "missing.safetensors",
              "mismatched": model_files.mismatched_checkpoint(tmp),
              "pickle": files["torch_zip.pt"]}
    out["node_startup"] = {k: faults.node_startup(p, domain=domain) for k, p in starts.items()}
    labels = tmp / "labels.txt"
    labels.write_text("a\nb\nc\n")
    out["label_mismatch"] = faults.recognizer_error(ckpt, labels_path=str(labels))
    out["pickle_refused"] = {k: faults.recognizer_error(p) for k, p in files.items()}
    out["pickle_executed"] = marker.exists()
    out["bad_parameters"] = {f"{n}={v!r}": faults.parameter_error(n, v, domain)
                             for n, v in BAD_PARAMETERS}
    out["reset_flood"] = faults.reset_flood(ckpt, 50_000)
    hostile = model_files.hostile_model_files(tmp / "hostile")
    out["hostile_model_files"] = {k: faults.recognizer_error(p) for k, (p, _) in hostile.items()}
    out["hostile_model_startup"] = {k: faults.node_startup(hostile[k][0], domain=domain) for k in
                                    ("glimpse_hidden_20000", "config_is_list", "nan_weight")}
    params = {k: faults.node_startup(ckpt, args=("--params-file", str(p)), domain=domain)
              for k, p in faults.params_files(tmp).items()}
    params["bad_topic"] = faults.node_startup(ckpt, "image_topic:=bad topic!", domain=domain)
    out["startup_refusals"] = params
    out["sigint_startup"] = {str(a): faults.sigint_during_startup(ckpt, a, domain=domain)
                             for a in ("Fast DDS profile", 0.3)}
    return out


def run_domain() -> int:
    """The domain of every node of the run: the caller's ``ROS_DOMAIN_ID`` when set, else random.

    Also restricts the discovery of this process's own nodes (probes) to the host.
    """
    use_local_discovery()
    return domain_id(101, 200)


def main(argv: list[str] | None = None) -> int:
    """Run everything, write the JSON report, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="reliability.json")
    parser.add_argument("--malformed", type=int, default=1200)
    parser.add_argument("--overload-s", type=float, default=120.0)
    parser.add_argument("--soak-frames", type=int, default=10000)
    parser.add_argument("--only", nargs="+", choices=("all",) + CLASSES, default=["all"],
                        help="run only these classes: offline (hostile offline inputs, replay "
                        "arguments, SIGTERM during start-up), lifecycle (deactivate/activate "
                        "cycles while streaming), parameters (integers for double parameters)")
    parser.add_argument("--lifecycle-cycles", type=int, default=30)
    args = parser.parse_args(argv)
    try:
        domain = run_domain()
    except ValueError as err:
        parser.error(str(err))
    start = time.time()
    report: dict[str, Any] = {"machine": f"{platform.machine()}, {platform.processor() or '?'}"
                              f", {__import__('os').cpu_count()} cores", "ros_domain_id": domain}
    only = set(CLASSES if "all" in args.only else args.only)
    with tempfile.TemporaryDirectory(prefix="reliability-") as tmp:
        if "offline" in only:
            report.update(offline_runs(Path(tmp) / "offline", domain))
        if "lifecycle" in only:
            report.update(lifecycle_runs(Path(tmp) / "lifecycle", domain, args.lifecycle_cycles))
        if "parameters" in only:
            report.update(parameter_runs(Path(tmp) / "parameters", domain))
        if "all" in args.only:
            report.update(in_process_runs(Path(tmp), args.soak_frames, domain))
            report.update(dds_runs(Path(tmp), domain, args.malformed, args.overload_s))
    report["seconds"] = round(time.time() - start, 1)
    report["table"] = readme_table(report)
    Path(args.out).write_text(json.dumps(report, indent=2, default=str))
    print(report["table"])
    print(f"wrote {args.out} in {report['seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
