"""Offline annotation with the shipped demo model: overlay MP4, CSV, JSON and timeline agree."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("torch")

REPO = Path(__file__).resolve().parents[1]
T, STRIDE = 8, 4  # the demo model's window and the default stride


def labelled(n: int) -> int:
    """Frames a streaming recognizer labels out of ``n``: every window's frames, once."""
    return 0 if n < T else n - (n - T) % STRIDE


def write_video(path: Path, n: int, fps: float = 15.0, size: tuple[int, int] = (160, 120)):
    """A moving disc on a dark background, MJPG .avi."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    for i in range(n):
        frame = np.full((size[1], size[0], 3), 30, np.uint8)
        cv2.circle(frame, (20 + 6 * i, size[1] // 2), 12, (0, 200, 255), -1)
        writer.write(frame)
    writer.release()
    return path


def read_outputs(out: Path) -> tuple[list[dict], dict]:
    with open(out / "frames.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return rows, json.loads((out / "frames.json").read_text())


def check_consistent(rows: list[dict], meta: dict) -> None:
    """The CSV and the JSON describe the same frames, labels, top-k, boxes and probabilities."""
    frames = meta["frames"]
    assert len(rows) == len(frames) == meta["frames_labelled"]
    labels = meta["labels"]
    for row, fr in zip(rows, frames):
        assert int(row["frame"]) == fr["frame"]
        assert float(row["stamp"]) == pytest.approx(fr["stamp"], abs=1e-6)
        assert row["label"] == fr["label"] == fr["top_k"][0][0] == row["top1"]
        assert float(row["score"]) == pytest.approx(fr["top_k"][0][1], abs=1e-6)
        for i, (name, prob) in enumerate(fr["top_k"], start=1):
            assert row[f"top{i}"] == name
            assert float(row[f"top{i}_prob"]) == pytest.approx(prob, abs=1e-6)
        probs = np.array([float(row[f"p:{name}"]) for name in labels])
        np.testing.assert_allclose(probs, fr["probs"], atol=1e-6)
        assert probs.sum() == pytest.approx(1.0, abs=1e-4) and len(fr["glimpses"]) == 3
        boxes = np.array([[float(row[f"g{g}_{k}"]) for k in ("x0", "y0", "x1", "y1")]
                          for g in range(3)])
        np.testing.assert_allclose(boxes, fr["boxes"], atol=0.006)


def test_annotate_video_cli(tmp_path) -> None:
    """``python -m glimpse_ros.annotate`` on a generated video, without importing rclpy."""
    video = write_video(tmp_path / "clip.avi", n=14)
    out = tmp_path / "out"
    code = ("import sys; from glimpse_ros.annotate import main; rc = main(sys.argv[1:]); "
            "assert 'rclpy' not in sys.modules, 'annotate imported rclpy'; sys.exit(rc)")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", code, str(video), "--out", str(out),
                           "--backend", "torch"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "annotate" in proc.stderr and "frame" in proc.stderr  # tqdm progress bar
    rows, meta = read_outputs(out)
    n = labelled(14)
    assert n == 12 and len(rows) == n and meta["frames_read"] == 14
    assert [int(r["frame"]) for r in rows] == list(range(n))
    # no stamps in a video file: index / frame rate
    assert [float(r["stamp"]) for r in rows] == pytest.approx([i / 15.0 for i in range(n)],
                                                              abs=1e-6)
    check_consistent(rows, meta)
    cap = cv2.VideoCapture(str(out / "overlay.mp4"))
    assert cap.isOpened() and cap.get(cv2.CAP_PROP_FPS) == pytest.approx(15.0)
    decoded = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        assert frame.shape == (120, 160, 3)
        decoded += 1
    cap.release()
    assert decoded == n
    timeline = cv2.imread(str(out / "timeline.png"))
    assert timeline is not None and timeline.shape[1] > 900


def test_annotate_bag_keeps_recorded_stamps(tmp_path) -> None:
    """A bag's frames are labelled with their recorded header stamps."""
    pytest.importorskip("rosbags")
    from bag_fixtures import write_bag

    from glimpse_ros.tools.annotate import main

    content = write_bag(tmp_path / "bag", "mcap", n=10, with_compressed=False)
    out = tmp_path / "out"
    assert main([str(tmp_path / "bag"), "--out", str(out), "--backend", "torch",
                 "--no-progress", "--top-k", "2"]) == 0
    rows, meta = read_outputs(out)
    n = labelled(10)
    assert len(rows) == n == 8
    assert [float(r["stamp"]) for r in rows] == pytest.approx(content.raw_stamps[:n], abs=1e-6)
    assert "top3" not in rows[0] and len(meta["frames"][0]["top_k"]) == 2
    check_consistent(rows, meta)
    cap = cv2.VideoCapture(str(out / "overlay.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == n
    cap.release()


def test_annotate_bad_input_exits_2(tmp_path, capsys) -> None:
    """A missing input is reported with its path, exit status 2, no traceback."""
    from glimpse_ros.tools.annotate import main

    assert main([str(tmp_path / "missing.avi"), "--out", str(tmp_path / "o")]) == 2
    assert "missing.avi" in capsys.readouterr().err
