"""Deviation of the reduced precisions from fp32 on the demo model (``make bench``, DESIGN §6).

The shipped demo model (trained weights: random weights give near-uniform probabilities that
would hide any error) runs held-out synthetic videos through the Recognizer once per
``(backbone precision, head precision)`` configuration. Videos come from the project's generator
with the demo's training seed and size, keeping only subjects of the cross-subject test side, so
the model saw neither these videos nor these people. Per configuration: the largest
``|p - p_fp32|`` over every frame and class, and the share of frames whose top-1 class equals the
fp32 recognizer's (unsmoothed per-frame probabilities).

The Recognizer streams a causal model and windows a symmetric one (``stride`` 4 here), so this
measures whichever path the demo model uses; the report names it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from glimpse_ros.config import RecognizerConfig

LOG = logging.getLogger("glimpse_ros.bench")
VIDEO_SIZE = (160, 120)  # the demo model's training videos (models/demo/manifest.json)


def held_out_videos(count: int, frames: int, seed: int = 0,
                    first_index: int = 100_000) -> list[np.ndarray]:
    """``count`` synthetic videos ``(frames, H, W, 3)`` uint8 of cross-subject test subjects.

    Indices start far beyond any training set size, so no video is one the model trained on;
    classes cycle with the index, subjects of the training side are skipped.
    """
    from training.ntu.splits import is_train_ids
    from training.synthetic.generator import render, sample_spec

    videos, index = [], first_index
    while len(videos) < count:
        spec = sample_spec(seed, index, VIDEO_SIZE, frames, 0.0)
        index += 1
        if is_train_ids(spec.name.subject, spec.name.camera, "cs"):
            continue
        videos.append(render(spec)[0])
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
    clips = held_out_videos(videos, frames)

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
