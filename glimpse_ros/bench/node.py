"""``make bench-node``: the recognizer node under camera-like load, measured from outside.

    python -m glimpse_ros.bench.node --out bench_node.json [--model M] [--seconds 20]
        [--node-param precision:=int8_mixed ...]

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
- node RSS (current and peak), node CPU use and CPU per frame of all processes involved.

Then, per backend (``--backends``), the node in its own process and in the same process as the
publisher (one executor), 640x480 bgr8 at 30 fps (:mod:`glimpse_ros.bench.node_backends`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from pathlib import Path

from glimpse_ros.bench.common import cpu_description, cpu_name
from glimpse_ros.bench.node_backends import BACKENDS, backends_table, run_backends
from glimpse_ros.bench.node_run import run_scenario
from glimpse_ros.ros.discovery import domain_id, use_local_discovery
from glimpse_ros.ros.transport import apply_default_transport
from glimpse_ros.tools.vtest import fetch_vtest

# name -> (fps, frame size or None for the file's, JPEG-compressed input, causal model streamed)
SCENARIOS = {"vtest_10fps_768x576": (10.0, None, False, False),
             "vtest_30fps_1920x1080": (30.0, (1920, 1080), False, False),
             "vtest_30fps_1920x1080_jpeg": (30.0, (1920, 1080), True, False),
             "vtest_30fps_768x576_stream": (30.0, None, False, True)}


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
    ap.add_argument("--backends", default=",".join(BACKENDS),
                    help="per-backend rows, own process and in process ('' = none)")
    ap.add_argument("--backend-seconds", type=float, default=10.0,
                    help="measured time of each per-backend row")
    ap.add_argument("--node-param", action="append", default=[], metavar="NAME:=VALUE",
                    help="more node parameters for the scenario rows (repeatable), e.g. "
                    "precision:=int8_mixed")
    args = ap.parse_args(argv)
    # The node process applies the profile itself; this (publishing) process needs it as well.
    apply_default_transport()
    use_local_discovery()  # the listener of this process too: nothing beyond this host
    try:
        domain_id()
    except ValueError as err:
        ap.error(str(err))
    video = Path(args.video) if args.video else fetch_vtest()
    results = {"machine": {"cpu": cpu_name(), "cpu_description": cpu_description(),
                           "cores": os.cpu_count(),
                           "python": platform.python_version(),
                           "loadavg_before": os.getloadavg()[0]},
               "model": args.model or "demo", "video": str(video),
               "input_reliability": args.input_reliability,
               "stride": args.stride, "node_params": args.node_param,
               "fastdds_profile": os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE", ""),
               "scenarios": {}}
    for name in filter(None, args.scenarios.split(",")):
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
    if args.backends:
        results["backends"] = run_backends(args, video, [b for b in args.backends.split(",") if b])
    results["machine"]["loadavg_after"] = os.getloadavg()[0]
    Path(args.out).write_text(json.dumps(results, indent=1))
    cols = ("processed_fps", "dropped_in_node", "lost_in_transport", "latency_p50_ms",
            "latency_p95_ms", "node_rss_mib", "node_cpu_percent")
    print("| scenario | " + " | ".join(cols) + " |")
    print("|" + "---|" * (len(cols) + 1))
    for name, r in results["scenarios"].items():
        print(f"| {name} | " + " | ".join(str(r[c]) for c in cols) + " |")
    if args.backends:
        d = results["machine"]["cpu_description"]
        print(backends_table(results["backends"], f"{d['name']} (family {d.get('cpu_family')} "
                             f"model {d.get('model')}), {os.cpu_count()} cores, flags "
                             f"{' '.join(d['flags']) or 'none notable'}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
