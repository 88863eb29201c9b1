"""``make bench-node``: the recognizer node under camera-like load, measured from outside.

    python -m glimpse_ros.bench.node --out bench_node.json [--model M] [--seconds 20]

The node runs in its own process (``python -m glimpse_ros.recognizer``); this process publishes
OpenCV's ``vtest.avi`` (fetched once, see :mod:`glimpse_ros.tools.vtest`) as a camera and listens
to the node's outputs. Scenarios: 10 fps at the file's 768x576, 30 fps upscaled to 1920x1080 as
raw bgr8 and as JPEG (``image/compressed``), and a streaming row: 30 fps at 768x576 into a
causal model, which labels every frame (one backbone step + one head step per frame). The
streaming row uses ``--stream-model``, else the model itself when it is causal, else a causal
copy of its configuration with random weights (speed does not depend on them; the JSON says
which).
After a warm-up, for a fixed time it records:

- processed fps: frames whose output (glimpse markers) arrived, per second;
- dropped frames: frames the node dropped from its queue (inference behind) plus frames lost
  between publisher and node (best-effort transport), from the node's diagnostics;
- latency p50/p95: output arrival time - source stamp (the node's own publish-time figure is also
  reported; they differ by the DDS delivery time);
- node RSS (current and peak) and node CPU use.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rclpy

from glimpse_ros.bench.camera_load import Listener, load_frames, stream, video_size
from glimpse_ros.bench.common import cpu_name
from glimpse_ros.ros.discovery import domain_id, local_env, use_local_discovery
from glimpse_ros.ros.transport import apply_default_transport
from glimpse_ros.tools.reliability_harness import stop_process
from glimpse_ros.tools.vtest import fetch_vtest

# name -> (fps, frame size or None for the file's, JPEG-compressed input, causal model streamed)
SCENARIOS = {"vtest_10fps_768x576": (10.0, None, False, False),
             "vtest_30fps_1920x1080": (30.0, (1920, 1080), False, False),
             "vtest_30fps_1920x1080_jpeg": (30.0, (1920, 1080), True, False),
             "vtest_30fps_768x576_stream": (30.0, None, False, True)}
MAX_CACHED_FRAMES = 90  # pre-built messages, replayed in a loop (keeps the publisher cheap)


def proc_stats(pid: int) -> dict[str, float]:
    """RSS, peak RSS (MiB) and CPU seconds of a process, from /proc."""
    out: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024.0
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        out["cpu_s"] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        pass
    return out


def stream_model(model: str, out_dir: Path) -> tuple[str, str]:
    """A causal model for the streaming row and how it was obtained.

    ``model`` ('' = the shipped demo model) when it is causal; else a causal copy of its
    configuration with random weights, written into ``out_dir``.
    """
    import dataclasses

    import torch

    from glimpse_ros.model.checkpoint import load_checkpoint, save_checkpoint
    from glimpse_ros.model.glimpse_clouds import GlimpseClouds
    from glimpse_ros.runtime.model_files import resolve_model_path

    path = resolve_model_path(model)
    loaded = load_checkpoint(path)
    if loaded.config.causal:
        return model, f"{path.name} (causal)"
    torch.manual_seed(0)
    cfg = dataclasses.replace(loaded.config, temporal_padding="causal")
    out = save_checkpoint(out_dir / f"causal_{path.stem}.safetensors",
                          GlimpseClouds(cfg).eval(), list(loaded.labels))
    return str(out), f"causal copy of {path.name}'s configuration, random weights"


def scenario_env() -> tuple[int, dict[str, str]]:
    """The domain of one scenario (the caller's ROS_DOMAIN_ID when set) and its node's env."""
    domain = domain_id()
    return domain, local_env(domain)


def run_scenario(name: str, fps: float, size: tuple[int, int] | None, compressed: bool,
                 args: argparse.Namespace, video: Path, model_path: str | None = None) -> dict:
    """Start a node process, warm it up, measure for ``args.seconds``, stop it."""
    domain, env = scenario_env()
    model_path = args.model if model_path is None else model_path
    model = ["-p", f"model_path:={model_path}"] if model_path else []  # rcl rejects "x:="
    cmd = [sys.executable, "-m", "glimpse_ros.recognizer", "--ros-args", *model,
           "-p", f"backend:={args.backend}",
           "-p", "diagnostics_period_s:=0.5", "-p", f"stride:={args.stride}",
           "-p", "image_topic:=image",
           "-p", f"input_reliability:={args.input_reliability}",
           "-p", f"compressed:={'true' if compressed else 'false'}"]
    log_dir = Path(tempfile.gettempdir()) / "glimpse_bench_node"
    log_dir.mkdir(exist_ok=True)
    log = open(log_dir / f"{name}.log", "w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    try:
        msgs = load_frames(video, size, MAX_CACHED_FRAMES, compressed)
        listener = Listener(context, compressed)
        deadline = time.monotonic() + 120
        while listener.image_pub.get_subscription_count() == 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"node did not start (see {log.name})")
            time.sleep(0.1)
        stream(listener, msgs, fps, args.warmup)  # engine warm-up, caches, first windows
        time.sleep(1.0)
        with listener.lock:
            listener.arrivals.clear()
        before = {k: listener.diag_int(k) for k in ("frames_received", "dropped_frames",
                                                    "frames_processed")}
        cpu0 = proc_stats(proc.pid).get("cpu_s", 0.0)
        t0 = time.time()
        published = stream(listener, msgs, fps, args.seconds)
        elapsed = time.time() - t0
        cpu1 = proc_stats(proc.pid).get("cpu_s", 0.0)
        time.sleep(2.0)  # let the last outputs and a diagnostics message arrive
        mem = proc_stats(proc.pid)
        with listener.lock:
            arrivals = [(a, s) for a, s in listener.arrivals if s >= t0]
            diag = dict(listener.diag)
        after = {k: listener.diag_int(k) for k in before}
        lat = np.array([a - s for a, s in arrivals]) * 1e3
        received = after["frames_received"] - before["frames_received"]
        result = {
            "fps_in": fps, "size": list(size or video_size(video)), "jpeg": compressed,
            "seconds": round(elapsed, 2), "frames_published": published,
            "frames_processed": len(arrivals),
            "processed_fps": round(len(arrivals) / elapsed, 2),
            "dropped_in_node": after["dropped_frames"] - before["dropped_frames"],
            "lost_in_transport": max(0, published - received),
            "node_reported_lost_total": diag.get("lost_in_transport"),
            "latency_p50_ms": round(float(np.percentile(lat, 50)), 1) if lat.size else None,
            "latency_p95_ms": round(float(np.percentile(lat, 95)), 1) if lat.size else None,
            "node_latency_p50_ms": diag.get("latency_p50_ms"),
            "node_latency_p95_ms": diag.get("latency_p95_ms"),
            "node_rss_mib": round(mem.get("VmRSS", float("nan")), 1),
            "node_peak_rss_mib": round(mem.get("VmHWM", float("nan")), 1),
            "node_cpu_percent": round(100.0 * (cpu1 - cpu0) / elapsed, 1),
            "backend": diag.get("backend"),
        }
        listener.executor.shutdown()
        return result
    finally:
        rclpy.try_shutdown(context=context)
        stop_process(proc)
        log.close()


def main(argv: list[str] | None = None) -> int:
    """Run the scenarios, print a table, write JSON."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="bench_node.json")
    ap.add_argument("--model", default="", help="checkpoint ('' = shipped demo model)")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--stride", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=20.0, help="measured time per scenario")
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--input-reliability", default="reliable", choices=("reliable", "best_effort"),
                    help="node input QoS (without config/fastdds.xml, best effort loses most "
                    "large frames between processes)")
    ap.add_argument("--stream-model", default="",
                    help="causal model for the streaming row (default: see module docstring)")
    ap.add_argument("--video", default=None, help="video to stream (default: cached vtest.avi)")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated names")
    args = ap.parse_args(argv)
    # The node process applies the profile itself; this (publishing) process needs it as well.
    apply_default_transport()
    use_local_discovery()  # the listener of this process too: nothing beyond this host
    try:
        domain_id()
    except ValueError as err:
        ap.error(str(err))
    video = Path(args.video) if args.video else fetch_vtest()
    results = {"machine": {"cpu": cpu_name(), "cores": os.cpu_count(),
                           "python": platform.python_version(),
                           "loadavg_before": os.getloadavg()[0]},
               "model": args.model or "demo", "video": str(video),
               "input_reliability": args.input_reliability,
               "stride": args.stride,
               "fastdds_profile": os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE", ""),
               "scenarios": {}}
    for name in args.scenarios.split(","):
        fps, size, compressed, streamed = SCENARIOS[name]
        model_path = None
        if streamed and args.stream_model:
            model_path = results["stream_model"] = args.stream_model
        elif streamed:
            model_path, results["stream_model"] = stream_model(
                args.model, Path(tempfile.mkdtemp(prefix="glimpse_bench_node_")))
        print(f"scenario {name}: {fps:g} fps for {args.seconds:g} s ...", flush=True)
        results["scenarios"][name] = run_scenario(name, fps, size, compressed, args, video,
                                                  model_path)
        results["scenarios"][name]["streamed"] = streamed
        print(json.dumps(results["scenarios"][name]), flush=True)
    results["machine"]["loadavg_after"] = os.getloadavg()[0]
    Path(args.out).write_text(json.dumps(results, indent=1))
    cols = ("processed_fps", "dropped_in_node", "lost_in_transport", "latency_p50_ms",
            "latency_p95_ms", "node_rss_mib", "node_cpu_percent")
    print("| scenario | " + " | ".join(cols) + " |")
    print("|" + "---|" * (len(cols) + 1))
    for name, r in results["scenarios"].items():
        print(f"| {name} | " + " | ".join(str(r[c]) for c in cols) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
