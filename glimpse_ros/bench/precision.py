"""Deviation of the reduced precisions from fp32 on the demo model (``make bench``, DESIGN §6).

The shipped demo model (trained weights: random weights give near-uniform probabilities that
would hide any error) runs held-out synthetic videos through the Recognizer once per
``(backbone precision, head precision)`` configuration. Videos come from the project's generator
at the demo's training size with another seed, so the model saw neither these videos nor these
people (bodies and clothes are drawn per seed and subject). Per configuration: the largest
``|p - p_fp32|`` over every frame and class, and the share of frames whose top-1 class equals the
fp32 recognizer's (unsmoothed per-frame probabilities).

The Recognizer streams a causal model and windows a symmetric one (``stride`` 4 here), so this
measures whichever path the demo model uses; the report names it.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from glimpse_ros.config import RecognizerConfig

LOG = logging.getLogger("glimpse_ros.bench")
VIDEO_SIZE = (160, 120)  # the demo model's training videos (models/demo/manifest.json)
HELD_OUT_SEED = 1  # the demo model was trained on seed 0


def held_out_videos(count: int, frames: int, out_dir: Path,
                    seed: int = HELD_OUT_SEED) -> list[np.ndarray]:
    """``count`` synthetic videos ``(frames, H, W, 3)`` uint8 RGB the demo model never saw.

    Rendered by the training package's generator (``python -m training.synthetic``) in a
    subprocess from the source checkout (as ``glimpse_ros.tools.demo`` does): the installed
    package never imports ``training``. Its bodies and colours are drawn per ``(seed, subject)``,
    so with a seed other than the demo model's training seed (0) every subject is new.

    Raises:
        RuntimeError: no source checkout with ``training/``, or the generator failed.
    """
    root = Path(__file__).resolve().parents[2]  # the checkout holding glimpse_ros/ and training/
    if not (root / "training" / "synthetic" / "__main__.py").is_file():
        raise RuntimeError("the precision deviation needs the source checkout's training/ "
                           "(python -m training.synthetic); run make bench from the checkout")
    cmd = [sys.executable, "-m", "training.synthetic", "--out", str(out_dir),
           "--videos", str(count), "--frames", str(frames), "--seed", str(seed),
           "--width", str(VIDEO_SIZE[0]), "--height", str(VIDEO_SIZE[1]),
           "--missing-skeleton-prob", "0"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(root), *filter(None, [os.environ.get("PYTHONPATH")])]))
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"synthetic video generator failed: {proc.stderr.strip()[-500:]}")
    videos = []
    for stem in json.loads((out_dir / "synthetic.json").read_text())["samples"]:
        cap = cv2.VideoCapture(str(out_dir / f"{stem}_rgb.avi"))
        video = []
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            video.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        cap.release()
        videos.append(np.stack(video))
    return videos


def run_probs(config: RecognizerConfig, model: Path, videos: list[np.ndarray]
              ) -> tuple[np.ndarray, str]:
    """Per-frame probabilities ``(frames, N)`` of all videos, and the path (stream or window)."""
    from glimpse_ros.runtime.recognizer import Recognizer

    rec = Recognizer(config, model)
    probs = []
    for video in videos:
        rec.reset("next video")
        for t, frame in enumerate(video):
            probs += [r.probs for r in rec.push(frame, t / 30.0)]
    return np.stack(probs), ("stream" if getattr(rec, "streaming", False) else "window")


def deviation(model: Path, configs: list[tuple[str, str]], backend: str, threads: int,
              cache_dir: str, videos: int = 18, frames: int = 24) -> dict:
    """Deviation from fp32 of each ``(precision, head_precision)`` in ``configs``."""
    clips = held_out_videos(videos, frames, Path(tempfile.mkdtemp(prefix="glimpse_heldout_")))

    def probs(prec: str, head: str) -> tuple[np.ndarray, str]:
        cfg = RecognizerConfig(backend=backend, precision=prec, head_precision=head,
                               num_threads=threads, engine_cache_dir=cache_dir)
        return run_probs(cfg, model, clips)

    ref, path = probs("fp32", "fp32")
    report: dict = {"model": model.name, "path": path, "videos": videos,
                    "frames": int(ref.shape[0]), "configs": {}}
    for prec, head in configs:
        if (prec, head) == ("fp32", "fp32"):
            continue
        p, _ = probs(prec, head)
        name = prec if head == "fp32" else f"{prec}+head_{head}"
        report["configs"][name] = {
            "max_abs_prob_diff": float(np.abs(p - ref).max()),
            "mean_abs_prob_diff": float(np.abs(p - ref).mean()),
            "top1_agreement": float((p.argmax(-1) == ref.argmax(-1)).mean())}
        LOG.info("precision %s vs fp32 on %s: max |dp| %.4f, top-1 agreement %.1f%%", name,
                 model.name, report["configs"][name]["max_abs_prob_diff"],
                 100 * report["configs"][name]["top1_agreement"])
    return report


__all__ = ["VIDEO_SIZE", "deviation", "held_out_videos", "run_probs"]
