"""Two-process torchrun (gloo) smoke training on tiny synthetic data, then --resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from glimpse_ros.model.resnet2d import ResNet2d
from training.ntu.prepare import prepare
from training.synthetic.__main__ import main as synth_main
from training.synthetic.actions import ACTION_NAMES

REPO = Path(__file__).resolve().parents[1]
TORCHRUN = Path(sys.executable).with_name("torchrun")


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run a command with one thread per process and the repository on the path."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=150)


@pytest.mark.slow
def test_torchrun_two_ranks_in_sync_and_resume(tmp_path):
    """Torchrun two ranks in sync and resume."""
    raw, prep, out = tmp_path / "raw", tmp_path / "prep", tmp_path / "run"
    assert synth_main(["--out", str(raw), "--videos", "12", "--seed", "1", "--width", "64",
                       "--height", "48", "--frames", "8"]) == 0
    prepare(raw, raw, prep, 40, list(ACTION_NAMES), workers=1, dataset="synthetic")
    # A torchvision-format 2D checkpoint of the small ResNet, inflated into the backbone (stage 1).
    torch.save(ResNet2d((1, 1, 1, 1), 8).state_dict(), tmp_path / "resnet2d.pth")
    overrides = [f"data.root={prep}", f"out_dir={out}", "data.protocol=cv", "data.num_workers=0",
                 "data.val_fraction=0.2", "data.test_clips=2", "optim.batch_size=2",
                 "threads=1", "progress=false", "log_every=1",
                 "model={frames: 4, crop_size: 32, resize_size: 40}"]
    cmd = [str(TORCHRUN), "--nproc_per_node", "2", "--master_port", "29517",
           str(REPO / "training" / "train.py"), "--config",
           str(REPO / "config" / "train" / "synthetic.yaml")]
    pretrained = f"pretrained_2d={tmp_path / 'resnet2d.pth'}"
    first = _run(cmd + overrides + ["optim.epochs=1", pretrained], REPO)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "inflated" in first.stderr
    sync = json.loads((out / "rank_params.json").read_text())
    steps = sync["step"]
    assert steps > 0 and len(sync["digests"]) == 2 and sync["in_sync"]
    assert sync["digests"][0] == sync["digests"][1]
    ckpt = torch.load(out / "last.pt", weights_only=True)
    assert ckpt["step"] == steps and ckpt["labels"] == list(ACTION_NAMES)
    assert ckpt["config"]["data"]["protocol"] == "cv" and ckpt["git_revision"]
    assert (out / "model.safetensors").exists() and (out / "confusion.png").exists()

    second = _run(cmd + overrides + ["optim.epochs=2", "--resume"], REPO)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"resumed from {out / 'last.pt'} at step {steps}" in second.stderr
    sync2 = json.loads((out / "rank_params.json").read_text())
    assert sync2["step"] == 2 * steps and sync2["in_sync"]
    resumed = torch.load(out / "last.pt", weights_only=True)
    assert resumed["epoch"] == 1
    # Adam's per-parameter step counts continue from the restored optimizer state.
    adam_steps = {int(v["step"]) for v in resumed["optimizer"]["state"].values()}
    assert adam_steps == {2 * steps}
