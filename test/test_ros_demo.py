"""The one-process demo on a short synthetic clip with a small random model."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

pytest.importorskip("rclpy")
torch = pytest.importorskip("torch")
pytest.importorskip("training.synthetic.generator")

REPO = Path(__file__).resolve().parents[1]


def test_synthetic_clip_has_one_truth_label_per_frame(tmp_path) -> None:
    """The demo clip concatenates different actions; every frame has its ground truth."""
    from glimpse_ros.tools.demo import synthetic_clip
    from training.synthetic.actions import ACTION_NAMES

    path, truth = synthetic_clip(tmp_path, actions=2, frames_per_action=5, seed=3, size=(64, 48),
                                 scale=2)
    frames = sorted(path.glob("*.png"))
    assert len(frames) == len(truth) == 10
    assert cv2.imread(str(frames[0])).shape == (96, 128, 3)
    # the generator cycles classes by video index: video i shows action i
    assert truth == [ACTION_NAMES[0]] * 5 + [ACTION_NAMES[1]] * 5


def test_demo_writes_overlay_video_and_png(tmp_path) -> None:
    """Demo run ends by itself, prints labels with latency, writes overlay.mp4 + annotated.png."""
    from glimpse_ros.config import ModelConfig
    from glimpse_ros.model.checkpoint import save_checkpoint
    from glimpse_ros.model.glimpse_clouds import GlimpseClouds

    torch.manual_seed(0)
    model = tmp_path / "m.safetensors"
    save_checkpoint(model, GlimpseClouds(ModelConfig.small(num_classes=3, crop_size=32,
                                                           resize_size=40)), ["a", "b", "c"])
    env = dict(os.environ, ROS_DOMAIN_ID=str(random.randint(231, 232)),
               ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", OMP_NUM_THREADS="1")
    out = tmp_path / "demo_out"
    proc = subprocess.run([sys.executable, "-m", "glimpse_ros.demo", "--model", str(model),
                           "--backend", "torch", "--actions", "2", "--frames-per-action", "20",
                           "--no-vtest", "--out", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "latency" in proc.stdout and "[truth:" in proc.stdout
    assert "summary: frames_published 40" in proc.stdout
    png = cv2.imread(str(out / "annotated.png"))
    assert png is not None and png.shape == (360, 480, 3)  # enlarged 3x for viewing
    cap = cv2.VideoCapture(str(out / "overlay.mp4"))
    assert cap.isOpened() and cap.get(cv2.CAP_PROP_FRAME_COUNT) >= 10
    cap.release()
