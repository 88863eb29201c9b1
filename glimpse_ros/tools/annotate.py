"""Offline annotation: run the recognizer on a video, image folder or ROS 2 bag, without ROS.

    glimpse-annotate VIDEO_OR_BAG --out DIR [--model M] [--backend auto] [--topic /cam/image_raw]
    python -m glimpse_ros.annotate ...

Writes into DIR, for every labelled frame (the recognizer labels a frame once a window holding it
has run: all but at most ``stride - 1`` trailing frames):

- ``overlay.mp4``: the frame with its glimpse boxes and smoothed top-k label, at the source's rate;
- ``frames.csv``: frame index, stamp, label, its score, top-k, glimpse boxes (pixels) and every
  class probability;
- ``frames.json``: the same per frame (plus glimpses in crop-normalised coordinates), with the
  model, backend and class names;
- ``timeline.png``: class probabilities over time with a band of the top-1 class.

Stamps are a bag's recorded header stamps, else frame index / frame rate.

Inputs that cannot be used are skipped, each with a warning, and counted in the summary and in
``frames.json`` (``inputs_skipped``): unreadable images of a folder, bag messages that are not a
decodable frame, and frames over ``--max-frame-pixels`` (the node's ``max_frame_pixels`` bound,
default 4096x4096 = 16777216 pixels; a video of larger frames is refused). A run that labels no
frame exits with status 2.
"""

from __future__ import annotations

import argparse
import collections
import csv
import dataclasses
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from glimpse_ros.cli_types import add_max_frame_pixels, bounded_int
from glimpse_ros.config import RecognizerConfig
from glimpse_ros.sources import DEFAULT_MAX_PIXELS, BagSource, FrameSource, open_source
from glimpse_ros.tools.timeline import timeline_image

OUTPUTS = ("overlay.mp4", "frames.csv", "frames.json", "timeline.png")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    ap = argparse.ArgumentParser(prog="glimpse-annotate", description=__doc__.split("\n")[0])
    ap.add_argument("input", help="video file, folder of images, or ROS 2 bag (sqlite3 / mcap)")
    ap.add_argument("--out", required=True, type=Path, help="output directory")
    ap.add_argument("--model", default="", help="checkpoint ('' = shipped demo model)")
    ap.add_argument("--backend", default="auto",
                    choices=("auto", "torch", "onnxruntime", "openvino", "tensorrt"))
    ap.add_argument("--stride", type=int, default=RecognizerConfig.stride,
                    help="run the backbone every N frames")
    ap.add_argument("--head-mode", default=RecognizerConfig.head_mode, choices=("stream", "clip"))
    ap.add_argument("--top-k", type=bounded_int(1), default=3, help="classes listed per frame")
    ap.add_argument("--topic", default="", help="bag image topic (default: the main one)")
    ap.add_argument("--max-frames", type=bounded_int(0), default=0,
                    help="stop after N frames (0 = all)")
    add_max_frame_pixels(ap, DEFAULT_MAX_PIXELS)
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    return ap.parse_args(argv)


def csv_header(labels: list[str], top_k: int, glimpses: int) -> list[str]:
    """Column names of frames.csv."""
    cols = ["frame", "stamp", "label", "score"]
    for i in range(1, top_k + 1):
        cols += [f"top{i}", f"top{i}_prob"]
    for g in range(glimpses):
        cols += [f"g{g}_x0", f"g{g}_y0", f"g{g}_x1", f"g{g}_y1"]
    return cols + [f"p:{name}" for name in labels]


class Annotator:
    """Writes the outputs of one run as results arrive."""

    def __init__(self, out: Path, fps: float, labels: list[str], top_k: int) -> None:
        """Create ``out`` and open the CSV; the video opens with its first frame."""
        self.out, self.fps, self.labels, self.top_k = out, fps, labels, top_k
        out.mkdir(parents=True, exist_ok=True)
        self.rows: list[dict] = []
        self.writer: cv2.VideoWriter | None = None
        self.size: tuple[int, int] | None = None
        self._csv_file = open(out / "frames.csv", "w", newline="")
        self._csv = csv.writer(self._csv_file)
        self._header_written = False

    def add(self, index: int, rgb: np.ndarray, result) -> None:
        """Record one labelled frame (``result``: a runtime FrameResult)."""
        from glimpse_ros.ros.overlay import draw_overlay

        top = list(result.top_k[:self.top_k])
        score = top[0][1] if top else 0.0
        boxes = np.asarray(result.boxes, dtype=np.float64).reshape(-1, 4)  # (G, 4) pixels
        row = {"frame": index, "stamp": float(result.stamp), "label": result.label,
               "score": float(score), "top_k": [[n, float(p)] for n, p in top],
               "boxes": boxes.round(2).tolist(),
               "glimpses": np.asarray(result.glimpses, np.float64).round(5).tolist(),
               "probs": np.asarray(result.probs, np.float64).round(6).tolist()}
        self.rows.append(row)
        if not self._header_written:
            self._csv.writerow(csv_header(self.labels, self.top_k, len(boxes)))
            self._header_written = True
        cells = [index, f"{row['stamp']:.6f}", row["label"], f"{score:.6f}"]
        for i in range(self.top_k):
            cells += [top[i][0], f"{top[i][1]:.6f}"] if i < len(top) else ["", ""]
        cells += [f"{v:.2f}" for v in boxes.ravel()]
        cells += [f"{p:.6f}" for p in row["probs"]]
        self._csv.writerow(cells)
        overlay = draw_overlay(rgb, boxes, f"{result.label} ({score:.2f})", top)
        bgr = cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR)
        if self.writer is None:
            self.size = (bgr.shape[1], bgr.shape[0])
            self.writer = cv2.VideoWriter(str(self.out / "overlay.mp4"),
                                          cv2.VideoWriter_fourcc(*"mp4v"), self.fps, self.size)
            if not self.writer.isOpened():
                raise RuntimeError(f"{self.out / 'overlay.mp4'}: OpenCV cannot write mp4v at "
                                   f"{self.fps:g} fps, {self.size[0]}x{self.size[1]}")
        if (bgr.shape[1], bgr.shape[0]) != self.size:  # a bag may change resolution
            bgr = cv2.resize(bgr, self.size, interpolation=cv2.INTER_LINEAR)
        self.writer.write(bgr)

    def close(self, meta: dict) -> None:
        """Finish the video and CSV, write the JSON and the timeline."""
        if self.writer is not None:
            self.writer.release()
        self._csv_file.close()
        (self.out / "frames.json").write_text(json.dumps({**meta, "frames": self.rows},
                                                         indent=1))
        if self.rows:
            stamps = np.array([r["stamp"] for r in self.rows])
            probs = np.array([r["probs"] for r in self.rows])  # (F, N)
            image = timeline_image(stamps, probs, self.labels)
            cv2.imwrite(str(self.out / "timeline.png"), image)


def annotate(source: FrameSource | BagSource, out: Path, config: RecognizerConfig,
             top_k: int = 3, max_frames: int = 0, progress: bool = True) -> dict:
    """Run a Recognizer over ``source`` and write the outputs into ``out``; return a summary."""
    from tqdm import tqdm

    from glimpse_ros.runtime.recognizer import Recognizer

    recognizer = Recognizer(config)
    fps = float(source.fps)
    annotator = Annotator(out, fps, list(recognizer.labels), top_k)
    pending: collections.deque = collections.deque()  # (stamp, index, rgb) awaiting a result
    total = source.count if not max_frames else min(max_frames, source.count or max_frames)
    frames = 0
    try:
        with tqdm(total=total, unit="frame", desc="annotate", disable=not progress) as bar:
            for frame in source.items():
                if max_frames and frames >= max_frames:
                    break
                stamp = frame.stamp if frame.stamp is not None else frame.index / fps
                pending.append((stamp, frame.index, frame.rgb))
                for result in recognizer.push(frame.rgb, stamp):
                    # results come in push order: drop frames a reset left unlabelled
                    while pending and pending[0][0] != result.stamp:
                        pending.popleft()
                    if pending:
                        _, index, rgb = pending.popleft()
                        annotator.add(index, rgb, result)
                frames += 1
                bar.update(1)
                bar.set_postfix_str(annotator.rows[-1]["label"] if annotator.rows else "")
    finally:
        meta = {"input": str(getattr(source, "path", "")), "model": str(recognizer.model_path),
                "backend": recognizer.backend_name, "fps": fps, "labels": annotator.labels,
                "config": dataclasses.asdict(config), "frames_read": frames,
                "frames_labelled": len(annotator.rows),
                "inputs_skipped": dict(source.rejections.by_reason)}
        annotator.close(meta)
    written = [str(out / name) for name in OUTPUTS if (out / name).is_file()]
    return {"frames_read": frames, "frames_labelled": len(annotator.rows), "out": str(out),
            "skipped": source.rejections.summary(), "written": written}


def main(argv: list[str] | None = None) -> int:
    """Console script ``glimpse-annotate``; exit 2 on bad input or configuration."""
    args = parse_args(argv)
    try:
        config = RecognizerConfig(model_path=args.model, backend=args.backend, stride=args.stride,
                                  head_mode=args.head_mode, top_k=args.top_k)
        source = open_source(args.input, topic=args.topic, max_pixels=args.max_frame_pixels)
        summary = annotate(source, args.out, config, args.top_k, args.max_frames,
                           progress=not args.no_progress)
    except (ValueError, OSError, RuntimeError) as err:  # RuntimeError: EngineUnavailable
        print(f"glimpse-annotate: {err}", file=sys.stderr)
        return 2
    counts = (f"{summary['frames_labelled']} of {summary['frames_read']} frames "
              f"(inputs: {summary['skipped']})")
    if not summary["frames_labelled"]:
        print(f"glimpse-annotate: {args.input}: nothing annotated: {counts}", file=sys.stderr)
        return 2
    print(f"annotated {counts} -> {', '.join(summary['written'])}")
    return 0
