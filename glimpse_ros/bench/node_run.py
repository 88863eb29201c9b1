"""One node run of ``make bench-node`` and what it measures (own-process node or in-process).

:func:`run_scenario` starts ``python -m glimpse_ros.recognizer`` in its own process and
measures it with :func:`measure`: after a warm-up, for a fixed time, the frames whose glimpse
markers arrived, drops in the node and in transport (from its diagnostics), latency p50/p95
(arrival time - source stamp, and the node's own publish-time figure), the node's RSS and CPU,
and the CPU per published frame of every process involved.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import rclpy

from glimpse_ros.bench.camera_load import Listener, load_frames, stream, video_size
from glimpse_ros.ros.discovery import domain_id, local_env
from glimpse_ros.tools.reliability_harness import stop_process

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
        out["pid"] = pid
    except (OSError, IndexError, ValueError):
        pass
    return out


def measure(listener: Listener, msgs: list, fps: float, args: argparse.Namespace,
            node_stats: Callable[[], dict[str, float]], size: tuple[int, int],
            compressed: bool) -> dict:
    """Warm up, publish for ``args.seconds`` and measure what arrives (see the module docstring).

    ``node_stats`` returns the node's process figures (``proc_stats``: cpu_s, VmRSS, VmHWM);
    ``cpu_ms_per_frame`` adds this (publishing) process's CPU when the node runs elsewhere.
    """
    stream(listener, msgs, fps, args.warmup)  # engine warm-up, caches, first windows
    time.sleep(1.0)
    with listener.lock:
        listener.arrivals.clear()
    before = {k: listener.diag_int(k) for k in ("frames_received", "dropped_frames",
                                                "frames_processed")}
    cpu0, own0 = node_stats().get("cpu_s", 0.0), proc_stats(os.getpid()).get("cpu_s", 0.0)
    t0 = time.time()
    published = stream(listener, msgs, fps, args.seconds)
    elapsed = time.time() - t0
    cpu1, own = node_stats().get("cpu_s", 0.0), proc_stats(os.getpid()).get("cpu_s", 0.0)
    same = node_stats().get("pid") == os.getpid()
    time.sleep(2.0)  # let the last outputs and a diagnostics message arrive
    mem = node_stats()
    with listener.lock:
        arrivals = [(a, s) for a, s in listener.arrivals if s >= t0]
        diag = dict(listener.diag)
    after = {k: listener.diag_int(k) for k in before}
    lat = np.array([a - s for a, s in arrivals]) * 1e3
    received = after["frames_received"] - before["frames_received"]
    total_cpu = (cpu1 - cpu0) + (0.0 if same else own - own0)
    return {
        "fps_in": fps, "size": list(size), "jpeg": compressed,
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
        "cpu_ms_per_frame": round(1e3 * total_cpu / max(published, 1), 1),
        "backend": diag.get("backend"),
    }


def scenario_env() -> tuple[int, dict[str, str]]:
    """The domain of one scenario (the caller's ROS_DOMAIN_ID when set) and its node's env."""
    domain = domain_id()
    return domain, local_env(domain)


def node_command(args: argparse.Namespace, model_path: str, compressed: bool) -> list[str]:
    """The node process's command line for a scenario (``args.node_param`` appended last)."""
    model = ["-p", f"model_path:={model_path}"] if model_path else []  # rcl rejects "x:="
    return [sys.executable, "-m", "glimpse_ros.recognizer", "--ros-args", *model,
            "-p", f"backend:={args.backend}",
            "-p", "diagnostics_period_s:=0.5", "-p", f"stride:={args.stride}",
            "-p", "image_topic:=image",
            "-p", f"input_reliability:={args.input_reliability}",
            "-p", f"compressed:={'true' if compressed else 'false'}",
            *(a for p in getattr(args, "node_param", None) or [] for a in ("-p", p))]


def run_scenario(name: str, fps: float, size: tuple[int, int] | None, compressed: bool,
                 args: argparse.Namespace, video: Path, model_path: str | None = None) -> dict:
    """Start a node process, warm it up, measure for ``args.seconds``, stop it."""
    domain, env = scenario_env()
    cmd = node_command(args, args.model if model_path is None else model_path, compressed)
    log_dir = Path(tempfile.gettempdir()) / "glimpse_bench_node"
    log_dir.mkdir(exist_ok=True)
    log = open(log_dir / f"{name}.log", "w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    context = rclpy.Context()
    rclpy.init(args=[], context=context, domain_id=domain)  # not this CLI
    try:
        msgs = load_frames(video, size, MAX_CACHED_FRAMES, compressed)
        listener = Listener(context, compressed)
        deadline = time.monotonic() + 120
        while listener.image_pub.get_subscription_count() == 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"node did not start (see {log.name})")
            time.sleep(0.1)
        result = measure(listener, msgs, fps, args, lambda: proc_stats(proc.pid),
                         size or video_size(video), compressed)
        listener.executor.shutdown()
        return result
    finally:
        rclpy.try_shutdown(context=context)
        stop_process(proc)
        log.close()


__all__ = ["MAX_CACHED_FRAMES", "measure", "node_command", "proc_stats", "run_scenario",
           "scenario_env"]
