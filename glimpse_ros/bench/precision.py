"""Deviation of the reduced precisions from fp32 on the demo model (``make bench``, DESIGN §6).

The shipped demo model (trained weights: random weights give near-uniform probabilities that
would hide any error) runs held-out synthetic videos through the Recognizer once per
``(backbone precision, head precision)`` configuration. Videos come from the project's generator
at the demo's training size with another seed, so the model saw neither these videos nor these
people (bodies and clothes are drawn per seed and subject). Per configuration: the largest
``|p - p_fp32|`` over every frame and class, and the share of frames whose top-1 class equals the
fp32 recognizer's (unsmoothed per-frame probabilities), with a 95 % interval from a bootstrap
over videos (frames of one video are not independent samples), and the share of frames whose
published (smoothed) label equals fp32's.

How many videos: the 98 % line (issue 18) is a top-1 agreement. On the earlier 18 videos (432
frames) one disagreeing frame moved it by 0.23 points, and int8's 97.7 % had the interval
95.4-99.5 %. 100 videos (2,400 frames) still left about +/- 0.6 points: ``int8_mixed`` measured
98.25 % on them in one version and 97.88 % in the next while both agreed on 98.30-98.31 % over
400 videos, so which variant counted for the fps target depended on the sample. The default is
therefore :data:`VIDEO_SETS`, 400 videos (9,600 frames) of three unseen seeds, about +/- 0.4
points; the whole deviation (six configurations) takes about 90 s on 2 cores.

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
# (seed, videos) of the held-out sets the deviation runs on by default: new subjects each.
VIDEO_SETS = ((1, 150), (2, 100), (3, 150))


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
              ) -> tuple[np.ndarray, np.ndarray, str]:
    """Per-frame probabilities ``(frames, N)``, published labels ``(frames,)``, the path."""
    from glimpse_ros.runtime.recognizer import Recognizer

    rec = Recognizer(config, model)
    results = []
    for video in videos:
        rec.reset("next video")
        for t, frame in enumerate(video):
            results += rec.push(frame, t / 30.0)
    return (np.stack([r.probs for r in results]), np.array([r.label for r in results]),
            "stream" if getattr(rec, "streaming", False) else "window")


def agreement_interval(match: np.ndarray, draws: int = 2000, seed: int = 0
                       ) -> tuple[float, float]:
    """95 % bootstrap interval of the mean of ``match (videos, frames)``, resampling videos.

    Frames of one video share its scene and state, so resampling frames would understate the
    spread; whole videos are drawn with replacement ``draws`` times (fixed ``seed``).
    """
    per_video = match.reshape(match.shape[0], -1).mean(axis=1)  # (videos,)
    rng = np.random.default_rng(seed)
    means = per_video[rng.integers(0, len(per_video), (draws, len(per_video)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def deviation(model: Path, configs: list[tuple[str, str]], backend: str, threads: int,
              cache_dir: str, video_sets: tuple[tuple[int, int], ...] = VIDEO_SETS,
              frames: int = 24) -> dict:
    """Deviation from fp32 of each ``(precision, head_precision)`` in ``configs``.

    Args:
        model: the checkpoint (the demo model: trained weights).
        configs: ``(precision, head_precision)`` pairs; ``(fp32, fp32)`` is the reference.
        backend: the backbone engine.
        threads: its threads.
        cache_dir: the engine cache.
        video_sets: ``(seed, videos)`` held-out sets, pooled.
        frames: frames per video.
    """
    work = Path(tempfile.mkdtemp(prefix="glimpse_heldout_"))
    clips = [clip for seed, count in video_sets
             for clip in held_out_videos(count, frames, work / f"seed{seed}", seed=seed)]
    videos = len(clips)

    def probs(prec: str, head: str) -> tuple[np.ndarray, np.ndarray, str]:
        cfg = RecognizerConfig(backend=backend, precision=prec, head_precision=head,
                               num_threads=threads, engine_cache_dir=cache_dir)
        return run_probs(cfg, model, clips)

    ref, ref_labels, path = probs("fp32", "fp32")
    report: dict = {"model": model.name, "path": path, "videos": videos,
                    "video_sets": [list(v) for v in video_sets],
                    "frames": int(ref.shape[0]), "configs": {}}
    for prec, head in configs:
        if (prec, head) == ("fp32", "fp32"):
            continue
        p, labels, _ = probs(prec, head)
        name = prec if head == "fp32" else f"{prec}+head_{head}"
        match = p.argmax(-1) == ref.argmax(-1)  # (videos * frames,), videos in order
        report["configs"][name] = {
            "max_abs_prob_diff": float(np.abs(p - ref).max()),
            "mean_abs_prob_diff": float(np.abs(p - ref).mean()),
            "top1_agreement": float(match.mean()),
            "top1_agreement_ci95": agreement_interval(match.reshape(len(clips), -1)),
            "published_label_agreement": float((labels == ref_labels).mean())}
        c = report["configs"][name]
        LOG.info("precision %s vs fp32 on %s: max |dp| %.4f, top-1 agreement %.2f%% "
                 "(95%% %.2f-%.2f), published label %.2f%%", name, model.name,
                 c["max_abs_prob_diff"], 100 * c["top1_agreement"],
                 *(100 * v for v in c["top1_agreement_ci95"]),
                 100 * c["published_label_agreement"])
    return report


__all__ = ["VIDEO_SETS", "VIDEO_SIZE", "agreement_interval", "deviation", "held_out_videos",
           "run_probs"]
