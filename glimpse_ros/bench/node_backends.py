"""Per-backend rows of ``make bench-node``: the node in its own process and in-process.

For every backend: 640x480 bgr8 frames at 30 fps (vtest.avi resized), once to the node running
in its own process (:func:`~glimpse_ros.bench.node_run.run_scenario`) and once to a
``RecognizerNode`` added to the publisher's own executor in this process (a user's composition:
camera and recognizer in one process, one ``SingleThreadedExecutor``). Both are measured the
same way (:func:`~glimpse_ros.bench.node_run.measure`); ``cpu_ms_per_frame`` counts every process
involved (node and publisher, or the one process).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import rclpy
from rclpy.parameter import Parameter

from glimpse_ros.bench.camera_load import Listener, load_frames
from glimpse_ros.bench.node_run import MAX_CACHED_FRAMES, measure, proc_stats, run_scenario
from glimpse_ros.ros.discovery import domain_id

BACKENDS = ("auto", "torch", "onnxruntime", "openvino")
SIZE = (640, 480)
FPS = 30.0
COLUMNS = ("frames_published", "frames_processed", "latency_p50_ms", "latency_p95_ms",
           "cpu_ms_per_frame")


def run_in_process(args: argparse.Namespace, video: Path) -> dict:
    """The recognizer node in this process, in the publisher/listener's executor."""
    from glimpse_ros.ros.node import RecognizerNode

    context = rclpy.Context()
    rclpy.init(args=[], context=context, domain_id=domain_id())  # not this CLI
    node = None
    try:
        msgs = load_frames(video, SIZE, MAX_CACHED_FRAMES)
        overrides = [Parameter("backend", value=args.backend),
                     Parameter("diagnostics_period_s", value=0.5),
                     Parameter("stride", value=args.stride),
                     Parameter("input_reliability", value=args.input_reliability)]
        if args.model:
            overrides.append(Parameter("model_path", value=args.model))
        node = RecognizerNode(context=context, parameter_overrides=overrides)
        listener = Listener(context)
        listener.executor.add_node(node)  # one executor: publisher, listener and recognizer
        result = measure(listener, msgs, FPS, args, lambda: proc_stats(os.getpid()), SIZE, False)
        listener.executor.shutdown()
        return result
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown(context=context)


def run_backends(args: argparse.Namespace, video: Path, backends: list[str]) -> dict:
    """``{backend: {"own_process": row, "in_process": row}}`` (``measure`` rows)."""
    out: dict[str, dict] = {}
    for backend in backends:
        # --node-param is for the scenario rows: a precision one backend runs would stop the
        # others' nodes, and the in-process row could not take it alike.
        b_args = argparse.Namespace(**{**vars(args), "backend": backend,
                                       "seconds": args.backend_seconds,
                                       "warmup": min(args.warmup, 3.0), "node_param": []})
        print(f"backend {backend}: own process, then in process ...", flush=True)
        out[backend] = {
            "own_process": run_scenario(f"{backend}_own_process", FPS, SIZE, False, b_args,
                                        video),
            "in_process": run_in_process(b_args, video)}
        print(out[backend], flush=True)
    return out


def backends_table(rows: dict, cpu: str) -> str:
    """A Markdown table of :func:`run_backends`'s rows, with the CPU named."""
    lines = [f"640x480 bgr8 at {FPS:g} fps, {cpu}:", "",
             "| backend | arrangement | " + " | ".join(COLUMNS) + " |",
             "|" + "---|" * (len(COLUMNS) + 2)]
    for backend, arrangements in rows.items():
        for name, r in arrangements.items():
            lines.append(f"| {backend} ({r.get('backend')}) | {name.replace('_', ' ')} | "
                         + " | ".join(str(r[c]) for c in COLUMNS) + " |")
    return "\n".join(lines)


__all__ = ["BACKENDS", "backends_table", "run_backends", "run_in_process"]
