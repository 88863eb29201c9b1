"""Demo: replay + recognizer + a viewer in ONE process (one executor), ends by itself.

    python -m glimpse_ros.demo                 # synthetic clip, shipped demo model
    python -m glimpse_ros.demo --video vtest.avi --seconds 10

The default input is a clip made on the fly with the training package's synthetic activity
generator (several actions one after the other, nothing downloaded; run as a tool from the source
checkout) and written to a temporary directory. When OpenCV's
``vtest.avi`` is given (``--vtest PATH``) or was cached by ``make bench-node``, a second pass runs
on it. Labels are printed with their latency (print time - source stamp) as they arrive;
``demo_out/overlay.mp4`` and ``demo_out/annotated.png`` (one annotated frame) are written.
The summary ends with a verdict (:mod:`glimpse_ros.tools.demo_verdict`): whether the recognizer
kept up, and where it did not, the measured reason.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from visualization_msgs.msg import MarkerArray

from glimpse_ros.ros.inference import stamp_to_float
from glimpse_ros.ros.node import RecognizerNode
from glimpse_ros.ros.transport import apply_default_transport
from glimpse_ros.ros.replay import ReplayNode
from glimpse_ros.sources import BagSource, FrameSource, open_source
from glimpse_ros.tools.demo_verdict import machine_cpu_seconds, verdict
from glimpse_ros.tools.demo_viewer import Viewer
from glimpse_ros.tools.thread_cpu import ThreadCpu
from glimpse_ros.tools.vtest import cached_vtest

DEFAULT_CLIP_SIZE = (160, 120)  # the demo model's training videos (training/demo.py)


def repository_root() -> Path | None:
    """The source checkout this package runs from, when it has the ``training/`` tools."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "training" / "synthetic" / "__main__.py").is_file() else None


def synthetic_clip(out_dir: Path, actions: int, frames_per_action: int, seed: int,
                   size: tuple[int, int] = DEFAULT_CLIP_SIZE,
                   scale: int = 1) -> tuple[Path, list[str]]:
    """Render ``actions`` synthetic videos of different classes back to back into a frame folder.

    The generator is the training package's tool (``python -m training.synthetic``), run in a
    subprocess from the source checkout: the installed package never imports ``training``.
    Video ``i`` shows action ``i % classes`` (the generator cycles classes by index). The videos
    are rendered at ``size`` (the model's training size) and written enlarged ``scale`` times as
    lossless PNG frames (a second lossy encoding would change what the model sees).

    Returns:
        (folder of the clip's frames, ground-truth label of every frame).

    Raises:
        RuntimeError: no source checkout with ``training/`` (an installed package), or the
            generator failed.
    """
    root = repository_root()
    if root is None:
        raise RuntimeError("the synthetic clip needs the source checkout's training/ "
                           "(python -m training.synthetic); pass --video to use a file")
    videos = out_dir / "synthetic_videos"
    cmd = [sys.executable, "-m", "training.synthetic", "--out", str(videos),
           "--videos", str(actions), "--frames", str(frames_per_action), "--seed", str(seed),
           "--width", str(size[0]), "--height", str(size[1]), "--missing-skeleton-prob", "0"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(root), *filter(None, [os.environ.get("PYTHONPATH")])]))
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"synthetic clip generator failed: {proc.stderr.strip()[-500:]}")
    meta = json.loads((videos / "synthetic.json").read_text())
    frames_dir = out_dir / "synthetic_clip"
    frames_dir.mkdir(parents=True, exist_ok=True)
    truth: list[str] = []
    for stem in meta["samples"]:  # in generation order: the actions back to back
        label = meta["labels"][int(stem[-3:]) - 1]  # ...Aaaa: 1-based action number
        cap = cv2.VideoCapture(str(videos / f"{stem}_rgb.avi"))
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            if scale > 1:
                bgr = cv2.resize(bgr, (size[0] * scale, size[1] * scale),
                                 interpolation=cv2.INTER_LINEAR)
            cv2.imwrite(str(frames_dir / f"{len(truth):06d}.png"), bgr)
            truth.append(label)
        cap.release()
    return frames_dir, truth


def training_frame_size(model: str) -> tuple[int, int]:
    """(width, height) of the synthetic videos the model was trained on, from its manifest."""
    from glimpse_ros.runtime.model_files import resolve_model_path

    try:
        manifest = resolve_model_path(model or None).parent / "manifest.json"
        width, height = json.loads(manifest.read_text())["data"]["size"]
        return int(width), int(height)
    except (ValueError, OSError, KeyError, TypeError):
        return DEFAULT_CLIP_SIZE


def run_once(source: FrameSource | BagSource, args: argparse.Namespace, out_dir: Path, tag: str,
             truth_frames: list[str] | None = None) -> dict:
    """Replay ``source`` through a recognizer node in this process; write the overlay outputs."""
    overrides = [Parameter("model_path", value=args.model),
                 Parameter("backend", value=args.backend),
                 Parameter("queue_size", value=2)]
    recognizer = RecognizerNode(parameter_overrides=overrides)
    viewer = Viewer(fps=args.fps or source.fps, out_video=out_dir / f"{tag}overlay.mp4")
    frame_no = [0]

    def on_frame(rgb: np.ndarray, header) -> None:
        if truth_frames is not None:
            viewer.truth[stamp_to_float(header.stamp)] = truth_frames[
                min(frame_no[0], len(truth_frames) - 1)]
        frame_no[0] += 1

    view_node = rclpy.create_node("demo_viewer")
    view_node.create_subscription(MarkerArray, "/recognizer/glimpses", viewer.on_markers, 50)
    view_node.create_subscription(Image, "/recognizer/overlay", viewer.on_overlay, 50)
    # One thread runs every callback: the recognizer's only convert and enqueue (inference has
    # its own thread). A MultiThreadedExecutor's dispatch thread rebuilt the wait set in Python
    # several times per callback and held the GIL the inference thread needs: on 2 cores its
    # dispatch thread used 13-29 ms of CPU per frame vs 7-9 ms for this one (docs/measurements.md).
    executor = SingleThreadedExecutor()
    executor.add_node(recognizer)
    executor.add_node(view_node)
    spin = threading.Thread(target=executor.spin, name="executor", daemon=True)
    spin.start()
    deadline = time.monotonic() + 10.0  # let the overlay subscription match before frames flow
    overlay_pub = recognizer.outputs.overlay_pub
    while overlay_pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    print(f"--- {tag or 'synthetic '}demo: {source.path.name} at {viewer.fps:.0f} fps, backend "
          f"{recognizer.stats.backend}, labels {len(recognizer.recognizer.labels)}", flush=True)
    cpu, busy0, t0 = ThreadCpu(), machine_cpu_seconds()[0], time.monotonic()
    cpu.start()
    replay = ReplayNode(source, fps=args.fps, duration_s=args.seconds, on_frame=on_frame,
                        wait_for_subscriber_s=10.0)
    executor.add_node(replay)
    while not replay.finished.wait(0.5):
        cpu.sample()
    # Drain: wait until the recognizer has nothing left to publish.
    last, quiet_since = -1, time.monotonic()
    while time.monotonic() - quiet_since < 1.5:
        n = len(viewer.labels)
        if n != last:
            last, quiet_since = n, time.monotonic()
        time.sleep(0.1)
    run = {"threads": cpu.stop(), "wall_s": time.monotonic() - t0, "fps": replay.fps,
           "machine_busy_s": machine_cpu_seconds()[0] - busy0}
    stats = recognizer.stats.snapshot()
    executor.shutdown()
    for node in (replay, view_node, recognizer):
        node.destroy_node()
    viewer.close()
    return summarize(viewer, replay.published, stats, out_dir / f"{tag}annotated.png", run)


def summarize(viewer: Viewer, published: int, stats: dict, png: Path, run: dict) -> dict:
    """Print a summary and the verdict, save one annotated frame (a correctly labelled one).

    Latency percentiles are over the whole run, measured where the viewer receives the labels
    (the node's diagnostics only cover their last window).
    """
    with viewer.lock:
        labels = list(viewer.labels)
        overlays = dict(viewer.overlays)
    correct = [s for s, text, _ in labels if viewer.truth.get(s) == text.split(" (")[0]]
    latency = np.array([lat for _, _, lat in labels]) * 1e3
    stats = dict(stats, latency_p50_ms=float(np.percentile(latency, 50)) if labels else math.nan,
                 latency_p95_ms=float(np.percentile(latency, 95)) if labels else math.nan)
    summary = {"frames_published": published, "frames_processed": stats["frames_processed"],
               "dropped_frames": stats["dropped_frames"],
               "latency_p50_ms": stats["latency_p50_ms"],
               "latency_p95_ms": stats["latency_p95_ms"],
               "process_cpu_ms_per_frame": 1e3 * sum(run["threads"].values()) / max(published, 1)}
    if viewer.truth and labels:
        summary["accuracy"] = len(correct) / len(labels)
    if overlays:
        # prefer a correct frame from the middle of the run: boxes and label make sense together
        pool = [s for s in correct if s in overlays] or sorted(overlays)
        stamp = pool[len(pool) // 2]
        cv2.imwrite(str(png), cv2.cvtColor(overlays[stamp], cv2.COLOR_RGB2BGR))
        summary["annotated"] = str(png)
    print("summary: " + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                                  for k, v in summary.items()), flush=True)
    print("CPU per thread during the run (s): " + ", ".join(
        f"{name} {sec:.2f}" for name, sec in run["threads"].items() if sec >= 0.05), flush=True)
    summary["kept_up"], text = verdict(published, stats, run["fps"], run["threads"],
                                       run["wall_s"], run["machine_busy_s"], os.cpu_count() or 1)
    print(f"verdict: {text}", flush=True)
    return summary


def main(argv: list[str] | None = None) -> int:
    """Console script ``demo``."""
    from rclpy.utilities import remove_ros_args

    argv = list(sys.argv if argv is None else ["demo", *argv])
    ap = argparse.ArgumentParser(prog="demo", description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="", help="checkpoint ('' = shipped demo model)")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--video", default=None,
                    help="use this video, image folder or bag instead of the synthetic clip")
    ap.add_argument("--vtest", default=None, help="path of vtest.avi (default: the cached one)")
    ap.add_argument("--no-vtest", action="store_true", help="skip the vtest.avi pass")
    ap.add_argument("--fps", type=float, default=None, help="replay rate (default: the file's)")
    ap.add_argument("--seconds", type=float, default=None, help="stop each pass after this long")
    ap.add_argument("--actions", type=int, default=5, help="synthetic actions in the clip")
    ap.add_argument("--frames-per-action", type=int, default=60)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--scale", type=int, default=1,
                    help="enlarge the synthetic clip (rendered at the model's training size)")
    ap.add_argument("--out", default="demo_out", type=Path)
    args = ap.parse_args(remove_ros_args(argv)[1:])
    args.out.mkdir(parents=True, exist_ok=True)
    apply_default_transport()
    rclpy.init(args=argv)
    try:
        with tempfile.TemporaryDirectory(prefix="glimpse_demo_") as tmp:
            if args.video:
                run_once(open_source(args.video), args, args.out, "")
            else:
                path, truth = synthetic_clip(Path(tmp), args.actions, args.frames_per_action,
                                             args.seed, training_frame_size(args.model),
                                             args.scale)
                run_once(FrameSource(path), args, args.out, "", truth)
            vtest = Path(args.vtest) if args.vtest else cached_vtest()
            if not args.no_vtest and not args.video and vtest is not None and vtest.is_file():
                vargs = argparse.Namespace(**{**vars(args), "seconds": args.seconds or 10.0})
                run_once(FrameSource(vtest), vargs, args.out, "vtest_")
    except (ValueError, OSError, RuntimeError) as err:
        print(f"demo: {err}", file=sys.stderr)
        return 2
    finally:
        rclpy.try_shutdown()
    print(f"outputs in {args.out}/", flush=True)
    return 0
