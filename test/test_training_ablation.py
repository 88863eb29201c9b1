"""Ablation runner: --quick end to end, what each arm trains, resume, report arithmetic."""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from safetensors.torch import load_file

from training.ablation.arms import ARM_KEYS, arm_by_key
from training.ablation.curves import curve_table
from training.ablation.placement import box_area, figure_boxes, inside
from training.ablation.report import mean_curves, sign_checks, summarise
from training.checkpoints import load_model_weights

REPO = Path(__file__).resolve().parents[1]
PAPER = {"global": 85.5, "full": 86.6, "no_lg": 86.4, "random": 80.3, "sum_gru": 85.8,
         "global_glimpses": 86.6}
NO_LG = ("no_lg", "oracle", "sum_gru")          # arms trained without L_G


def _run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "training.ablation", *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """One --quick ablation with two seeds."""
    root = tmp_path_factory.mktemp("ablation")
    args = ("--quick", "--seeds", "2", "--out", str(root / "runs"), "--data", str(root / "data"))
    proc = _run(*args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root, args


@pytest.mark.slow
def test_quick_writes_json_markdown_and_png(quick):
    """Every arm has two finite accuracies, mean/std as computed by hand, paper rows, a figure."""
    root, _ = quick
    out = root / "runs"
    report = json.loads((out / "ablation.json").read_text())
    summary = report["summary"]
    assert list(summary) == list(ARM_KEYS)
    for key, row in summary.items():
        assert len(row["top1"]) == 2 and all(0 <= v <= 100 for v in row["top1"])
        assert row["top1_mean"] == pytest.approx(statistics.mean(row["top1"]))
        assert row["top1_std"] == pytest.approx(statistics.stdev(row["top1"]))
        if key == "global":
            assert "actor_mean" not in row
        else:
            for part in ("actor", "distractor", "actor_area", "distractor_area"):
                assert math.isfinite(row[f"{part}_mean"]) and 0 <= row[f"{part}_mean"] <= 100
    arms = len(ARM_KEYS)
    assert len(report["runs"]) == 2 * (1 + arms) and set(report["sign_checks"]) == {
        "full_vs_global", "full_vs_no_lg", "full_vs_random", "full_vs_context",
        "full_vs_sum_gru"}
    assert all(math.isfinite(r["seconds"]) for r in report["runs"].values())
    # Stage 1's pose head scored as a locator, per seed and summarised.
    pose = report["pose_placement"]
    assert pose["seeds"] == 2 and 0 <= pose["actor_mean"] <= 100
    assert pose["actor_mean"] == pytest.approx(statistics.mean(
        100 * report["runs"][f"seed{s}/stage1"]["pose_placement"]["actor"] for s in (0, 1)))
    # Learning curves: one epoch of stage 1 and two of every arm in --quick, train and
    # validation accuracy recorded.
    for key, run in report["runs"].items():
        epochs = [0] if key.endswith("stage1") else [0, 1]
        assert [c["epoch"] for c in run["curve"]] == epochs, key
        for c in run["curve"]:
            assert 0 <= c["train_top1"] <= 100 and c["val_top1"] >= 0
    for key, row in summary.items():
        runs = [report["runs"][f"seed{s}/{key}"]["curve"] for s in (0, 1)]
        assert row["curve"]["val_top1"] == [pytest.approx(
            statistics.mean(r[e]["val_top1"] for r in runs), abs=0.01) for e in (0, 1)]
        assert row["paper"] == arm_by_key(key).paper
    md = (out / "ablation.md").read_text()
    table = [ln for ln in md.splitlines() if ln.startswith("| ")]
    # header, arms, claims header, claims, curves header, curve rows
    assert len(table) == 1 + arms + 1 + 5 + 1 + arms
    for key, value in PAPER.items():
        assert f"| {value} |" in md, key
    assert "pose head read as a locator" in md
    for name in ("placement.png", "curves.png"):
        img = cv2.imread(str(out / name))
        assert img is not None and img.shape[1] == 900 and img.std() > 10, name


@pytest.mark.slow
def test_each_arm_trains_what_it_claims(quick):
    """train.py's own config.json of every run: stage, losses, switches and stage-1 init."""
    out = quick[0] / "runs"
    for seed in (0, 1):
        cfg = {arm: json.loads((out / f"seed{seed}" / arm / "config.json").read_text())
               for arm in ("stage1",) + ARM_KEYS}
        assert all(c["seed"] == seed for c in cfg.values())
        assert cfg["stage1"]["stage"] == "global" and not cfg["stage1"]["init"]
        for arm in ARM_KEYS:
            c = cfg[arm]
            assert c["init"] == str(out / f"seed{seed}" / "stage1" / "best.pt")
            assert c["optim"]["epochs"] == 2 and c["optim"]["lr"] == pytest.approx(2e-4)
            # The new head learns at --head-lr after a warm-up epoch alone, except in the arm
            # that keeps the single rate from the start.
            assert c["optim"]["head_lr"] == pytest.approx(0.0 if arm == "same_lr" else 1e-3)
            assert c["optim"]["head_warmup_epochs"] == (0 if arm == "same_lr" else 1)
            assert c["stage"] == ("global" if arm == "global" else "full")
            assert c["loss"]["glimpse"] == (0.0 if arm in NO_LG else 1.0)
            assert c["model"].get("glimpse_locations", "learned") == (
                arm if arm in ("random", "oracle") else "learned")
            assert c["model"].get("num_workers", 3) == (1 if arm in ("c1", "sum_gru") else 3)
            assert c["model"].get("glimpse_pooling", "memory") == (
                "sum" if arm == "sum_gru" else "memory")
            assert c["model"].get("global_fusion", False) == (arm == "global_glimpses")
            assert c["freeze_backbone"] == (arm == "frozen")
            assert c["model"].get("glimpse_locator", "map") == (
                "context" if arm == "context" else "map")
        assert cfg["random"]["model"]["glimpse_seed"] == seed


def _weights(path: Path, prefix: str) -> dict:
    state = (load_file(str(path)) if path.suffix == ".safetensors"
             else load_model_weights(path, "cpu")[0])
    return {k: v for k, v in state.items() if k.startswith(prefix)}


@pytest.mark.slow
def test_new_arms_do_what_they_claim(quick):
    """Frozen keeps stage 1's backbone and BN statistics; fusion trains global_fc; oracle hits."""
    out = quick[0] / "runs" / "seed0"
    stage1 = out / "stage1" / "best.pt"
    backbone = _weights(stage1, "backbone.")
    frozen = _weights(out / "frozen" / "model.safetensors", "backbone.")
    assert frozen.keys() == backbone.keys() and any("running_mean" in k for k in frozen)
    assert all(bool((frozen[k] == backbone[k]).all()) for k in backbone)
    # The last epoch (the best one may be the head's warm-up epoch, which leaves the backbone):
    # its weights moved, its batch-norm statistics are stage 1's (--keep-bn, the default).
    full = _weights(out / "full" / "last.pt", "backbone.")
    stats = [k for k in backbone if "running_" in k or "num_batches" in k]
    assert stats and all(bool((full[k] == backbone[k]).all()) for k in stats)
    assert any(not bool((full[k] == backbone[k]).all()) for k in backbone if k not in stats)
    # The earlier recipe normalises with each batch: its statistics moved.
    same_lr = _weights(out / "same_lr" / "last.pt", "backbone.")
    assert any(not bool((same_lr[k] == backbone[k]).all()) for k in stats)
    fc = _weights(stage1, "global_fc.")
    fused = _weights(out / "global_glimpses" / "last.pt", "global_fc.")
    assert any(not bool((fused[k] == fc[k]).all()) for k in fc)
    unfused = _weights(out / "full" / "last.pt", "global_fc.")
    assert all(bool((unfused[k] == fc[k]).all()) for k in fc)
    record = json.loads((out / "oracle" / "record.json").read_text())
    assert record["placement"]["actor"] == 1.0 and record["placement"]["glimpses"] > 0


@pytest.mark.slow
def test_rerun_skips_finished_runs_and_refuses_other_settings(quick):
    """Same command again: nothing retrained, same summary; other settings: clear error."""
    root, args = quick
    out = root / "runs"
    records = sorted(out.glob("seed*/*/record.json"))
    before = {p: p.stat().st_mtime_ns for p in records}
    summary = json.loads((out / "ablation.json").read_text())["summary"]
    proc = _run(*args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in records} == before
    assert json.loads((out / "ablation.json").read_text())["summary"] == summary
    proc = _run(*args, "--lr", "1e-3")
    assert proc.returncode != 0 and "lr" in proc.stderr and "Traceback" not in proc.stderr


def test_summary_and_sign_checks_by_hand():
    """Mean ± sample std and the full-minus-arm differences of hand-made records."""
    place = dict(actor=0.5, distractor=0.1, actor_area=0.1, distractor_area=0.2)
    results = {0: {"global": dict(top1=50.0), "full": dict(top1=60.0, placement=place),
                   "random": dict(top1=70.0, placement=place)},
               1: {"global": dict(top1=54.0), "full": dict(top1=58.0, placement=place),
                   "random": dict(top1=50.0, placement=place)}}
    summary = summarise(results)
    assert list(summary) == ["global", "full", "random"]
    assert summary["global"]["top1_mean"] == 52.0
    assert summary["global"]["top1_std"] == pytest.approx(math.sqrt(8.0))
    assert summary["full"]["actor_mean"] == 50.0 and summary["full"]["actor_std"] == 0.0
    checks = sign_checks(results)
    assert checks["full_vs_global"]["difference_per_seed"] == [10.0, 4.0]
    assert checks["full_vs_global"]["holds"] and checks["full_vs_global"]["seeds_holding"] == 2
    assert checks["full_vs_random"]["difference_mean"] == pytest.approx(-1.0)
    assert not checks["full_vs_random"]["holds"]
    assert checks["full_vs_random"]["paper_difference"] == {"cs": 6.3, "cv": 5.4}
    assert "full_vs_no_lg" not in checks


def test_placement_boxes_by_hand():
    """Boxes of visible joints grown by the margin; centres inside; areas as crop fractions."""
    pts = np.array([[[-0.5, -0.2], [0.1, 0.4], [0.9, 0.9]]])          # (T=1, J=3, 2)
    vis = np.array([[True, True, False]])
    boxes, ok = figure_boxes(pts, vis, margin=0.1)
    np.testing.assert_allclose(boxes, [[-0.6, -0.3, 0.2, 0.5]])
    assert ok.tolist() == [True]
    centres = np.array([[[0.0, 0.0], [0.3, 0.0], [-0.6, 0.5]]])         # (T, G=3, 2)
    assert inside(centres, boxes).tolist() == [[True, False, True]]
    assert box_area(boxes)[0] == pytest.approx(0.8 * 0.8 / 4)
    assert box_area(np.array([[-2.0, -2.0, 2.0, 0.0]]))[0] == pytest.approx(0.5)
    _, none = figure_boxes(pts, np.zeros((1, 3), bool))
    assert none.tolist() == [False]


def test_learning_curve_means_and_table_by_hand():
    """Per-epoch means over seeds (missing validation skipped) and their Markdown row."""
    a = [dict(epoch=0, train_top1=40.0, val_top1=30.0),
         dict(epoch=1, train_top1=60.0, val_top1=None)]
    b = [dict(epoch=0, train_top1=50.0, val_top1=50.0),
         dict(epoch=1, train_top1=80.0, val_top1=None),
         dict(epoch=2, train_top1=90.0, val_top1=70.0)]
    assert mean_curves([a, b]) == {"epoch": [0, 1], "train_top1": [45.0, 70.0],
                                   "val_top1": [40.0, None]}
    assert mean_curves([a, []]) == {}
    lines = curve_table({"x": dict(title="arm x", curve=mean_curves([a, b]))})
    assert lines[-1] == "| arm x | 45 / 40 | 70 / - |"
    assert curve_table({"x": dict(title="arm x")}) == []
