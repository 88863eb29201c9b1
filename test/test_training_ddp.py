"""Two-process torchrun (gloo) training on tiny data: stages 1 and 2, resume, test-only, faults.

Also a non-finite loss on one rank, the NTU configs' pretrained_2d check and the N-UCLA configs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from glimpse_ros.model.glimpse_clouds import GlimpseClouds
from glimpse_ros.model.resnet2d import ResNet2d
from training.checkpoints import save_training_checkpoint
from training.config import load_train_config, read_labels
from training.evaluate import metrics
from training.loaders import build_datasets
from training.ntu.prepare import prepare
from training.nucla import prepare as nucla_prepare
from training.run_config import check_pretrained_2d, restore_config
from training.synthetic.__main__ import main as synth_main
from training.synthetic.actions import ACTION_NAMES
from training_fixtures import write_nucla_tree

REPO = Path(__file__).resolve().parents[1]
TORCHRUN = [str(Path(sys.executable).with_name("torchrun")), "--standalone", "--nproc_per_node",
            "2"]
PYTHON = [sys.executable]
TRAIN = str(REPO / "training" / "train.py")
SYNTHETIC = str(REPO / "config" / "train" / "synthetic.yaml")
TINY = "model={frames: 4, crop_size: 32, resize_size: 40}"
COMMON = ["data.num_workers=0", "optim.batch_size=2", "threads=1", "progress=false",
          "log_every=1"]
CPU_WARNING = "Training runs on the CPU with the gloo backend"


def _run(args: list[str], env: dict[str, str] | None = None,
         timeout: float = 150) -> subprocess.CompletedProcess:
    """Run a command with one thread per process and the repository on the path."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO), **(env or {}))
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _adam_steps(ckpt: dict) -> set[int]:
    """Adam's per-parameter step counts in a training checkpoint."""
    return {int(v["step"]) for v in ckpt["optimizer"]["state"].values()}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> list[str]:
    """Twelve synthetic videos prepared at 40 px; returns the data overrides."""
    root = tmp_path_factory.mktemp("ddp_data")
    raw, prep = root / "raw", root / "prep"
    assert synth_main(["--out", str(raw), "--videos", "12", "--seed", "1", "--width", "64",
                       "--height", "48", "--frames", "8"]) == 0
    prepare(raw, raw, prep, 40, list(ACTION_NAMES), workers=1, dataset="synthetic")
    return [f"data.root={prep}", "data.protocol=cv", "data.val_fraction=0.2",
            "data.test_clips=2", TINY] + COMMON


@pytest.fixture(scope="module")
def stage1(data, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """One epoch of stage 1 on two ranks, inflated from a 2D checkpoint of the small ResNet."""
    root = tmp_path_factory.mktemp("stage1")
    torch.save(ResNet2d((1, 1, 1, 1), 8).state_dict(), root / "resnet2d.pth")
    out = root / "run"
    run = _run(TORCHRUN + [TRAIN, "--config", SYNTHETIC] + data
               + [f"out_dir={out}", "optim.epochs=1", f"pretrained_2d={root / 'resnet2d.pth'}"])
    assert run.returncode == 0, run.stderr[-3000:]
    return out, run


@pytest.mark.slow
def test_stage1_ranks_in_sync_and_resume(stage1, data, tmp_path):
    """Stage 1 on two ranks stays in sync; --resume continues Adam and the step count."""
    src, first = stage1
    assert "inflated" in first.stderr and CPU_WARNING in first.stderr
    sync = json.loads((src / "rank_params.json").read_text())
    steps = sync["step"]
    assert steps > 0 and len(sync["digests"]) == 2 and sync["in_sync"]
    ckpt = torch.load(src / "last.pt", weights_only=True)
    assert ckpt["step"] == steps and ckpt["labels"] == list(ACTION_NAMES)
    assert ckpt["config"]["data"]["protocol"] == "cv" and ckpt["git_revision"]
    assert (src / "model.safetensors").exists() and (src / "confusion.png").exists()

    out = tmp_path / "copy"
    out.mkdir()
    (out / "last.pt").write_bytes((src / "last.pt").read_bytes())
    (out / "best.pt").write_bytes((src / "best.pt").read_bytes())
    second = _run(TORCHRUN + [TRAIN, "--config", SYNTHETIC, f"out_dir={out}", "optim.epochs=2",
                              "--resume"])
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"resumed from {out / 'last.pt'} at step {steps}" in second.stderr
    sync2 = json.loads((out / "rank_params.json").read_text())
    assert sync2["step"] == 2 * steps and sync2["in_sync"]
    resumed = torch.load(out / "last.pt", weights_only=True)
    assert resumed["epoch"] == 1 and _adam_steps(resumed) == {2 * steps}


@pytest.mark.slow
def test_stage2_trains_resumes_and_test_only_scores_the_full_model(stage1, data, tmp_path):
    """Stage 2 under DDP from stage 1; --resume and --test-only need no repeated settings."""
    init = stage1[0] / "best.pt"
    out = tmp_path / "full"
    first = _run(TORCHRUN + [TRAIN, "--config", SYNTHETIC] + data
                 + ["stage=full", f"init={init}", f"out_dir={out}", "optim.epochs=1",
                    "device=cpu", "optim.head_lr=1e-3", "optim.head_warmup_epochs=1",
                    "freeze_backbone_bn=true"])
    assert first.returncode == 0, first.stderr[-3000:]
    assert CPU_WARNING not in first.stderr               # device=cpu: the fallback is chosen
    sync = json.loads((out / "rank_params.json").read_text())
    steps = sync["step"]
    assert steps > 0 and sync["in_sync"]
    ckpt = torch.load(out / "last.pt", weights_only=True)
    assert ckpt["config"]["stage"] == "full" and _adam_steps(ckpt) == {steps}
    # global_fc is not trained in stage 2: it still holds the stage-1 weights.
    start = torch.load(init, weights_only=True)["model"]
    assert torch.equal(ckpt["model"]["global_fc.weight"], start["global_fc.weight"])
    # The locator learns (its scales: this test's 1 x 1 layer4 map leaves one place to look,
    # so the map locator's query gets no gradient there).
    assert not torch.equal(ckpt["model"]["head.locator.scale.weight"],
                           start["head.locator.scale.weight"])
    # Epoch 0 is the head's warm-up: the backbone (weights and statistics) did not move.
    conv, stats = "backbone.conv1.weight", "backbone.bn1.running_mean"
    assert torch.equal(ckpt["model"][conv], start[conv])
    assert torch.equal(ckpt["model"][stats], start[stats])
    assert json.loads((out / "results.json").read_text())["model"] == "glimpse_clouds"

    # Only out_dir and the new budget: stage, init, model and data come from the checkpoint.
    second = _run(TORCHRUN + [TRAIN, f"out_dir={out}", "optim.epochs=2", "--resume"])
    assert second.returncode == 0, second.stderr[-3000:]
    assert "stage full" in second.stderr and "optim.epochs=2 (stored: 1)" in second.stderr
    resumed = torch.load(out / "last.pt", weights_only=True)
    assert resumed["epoch"] == 1 and resumed["config"]["stage"] == "full"
    assert resumed["config"]["init"] == str(init) and _adam_steps(resumed) == {2 * steps}
    assert json.loads((out / "rank_params.json").read_text())["in_sync"]
    # After the warm-up the backbone trains on both ranks, its stage-1 statistics kept.
    assert not torch.equal(resumed["model"][conv], start[conv])
    assert torch.equal(resumed["model"][stats], start[stats])

    test = _run(PYTHON + [TRAIN, "--test-only", "--checkpoint", str(out / "best.pt")])
    assert test.returncode == 0, test.stderr[-3000:]
    report = json.loads((out / "test" / "results.json").read_text())
    assert report["model"] == "glimpse_clouds"
    # Independent scoring of best.pt's full model on the same test split.
    cfg = load_train_config(SYNTHETIC, data)
    mcfg = cfg.model_config(len(read_labels(cfg.data.labels)))
    model = GlimpseClouds(mcfg).eval()
    model.load_state_dict(torch.load(out / "best.pt", weights_only=True)["model"])
    ds = build_datasets(cfg, mcfg)["test"]
    logits, labels = [], []
    with torch.no_grad():
        for i in range(len(ds)):
            item = ds[i]
            logits.append(model(item["video"]).logits.mean(0).numpy())   # clips averaged
            labels.append(int(item["label"]))
    expected = metrics(np.stack(logits), np.array(labels), mcfg.num_classes)
    assert report["confusion"] == expected["confusion"]
    assert report["top1"] == pytest.approx(expected["top1"])


@pytest.mark.slow
def test_nonfinite_loss_on_one_rank_stops_every_rank(data, tmp_path):
    """A NaN loss on rank 1 only stops both ranks at that step (the first), each saying why."""
    t0 = time.monotonic()
    run = _run(TORCHRUN + [TRAIN, "--config", SYNTHETIC] + data
               + [f"out_dir={tmp_path / 'run'}", "optim.epochs=3", "pretrained_2d=none"],
               env={"GLIMPSE_TRAIN_NONFINITE_AT": "1:0"}, timeout=90)
    assert run.returncode != 0
    assert time.monotonic() - t0 < 80
    for rank in (0, 1):
        assert f"rank {rank}: non-finite loss at step 0 on rank(s) [1]" in run.stderr, \
            run.stderr[-3000:]
    assert run.stderr.count("non-finite loss at step 0 on this rank") == 1
    assert not (tmp_path / "run" / "last.pt").exists()


@pytest.mark.parametrize("name", ["ntu_cs", "ntu_cv"])
def test_ntu_configs_refuse_training_from_scratch(name, tmp_path):
    """The NTU configs need the ImageNet ResNet-50 file (or an explicit pretrained_2d=none)."""
    cfg = load_train_config(REPO / "config" / "train" / f"{name}.yaml")
    with pytest.raises(ValueError, match="resnet50-0676ba61.pth") as err:
        check_pretrained_2d(cfg)
    assert "pretrained_2d=none" in str(err.value)
    for ok in ("pretrained_2d=none", "pretrained_2d=/x/resnet50-0676ba61.pth", "init=/x/a.pt"):
        check_pretrained_2d(load_train_config(REPO / "config" / "train" / f"{name}.yaml", [ok]))
    base = ["--config", str(REPO / "config" / "train" / f"{name}.yaml"),
            f"data.root={tmp_path / 'none'}", f"out_dir={tmp_path / 'run'}"]
    refused = _run(PYTHON + [TRAIN] + base, timeout=60)
    assert refused.returncode == 2 and "pretrained_2d" in refused.stderr
    assert "resnet50-0676ba61.pth" in refused.stderr and "Traceback" not in refused.stderr
    opted = _run(PYTHON + [TRAIN] + base + ["pretrained_2d=none"], timeout=60)
    assert opted.returncode == 2 and "pretrained_2d" not in opted.stderr
    assert str(tmp_path / "none") in opted.stderr                # stopped later, at the data


def test_stored_config_with_command_line_overrides():
    """Stored values are kept, explicit overrides win and are reported with the stored value."""
    stored = {"stage": "full", "init": "a.pt", "out_dir": "runs/x", "optim": {"epochs": 3}}
    cfg, wins = restore_config(stored, ["optim.epochs=5", "out_dir=runs/y"])
    assert (cfg.stage, cfg.init, cfg.out_dir, cfg.optim.epochs) == ("full", "a.pt", "runs/y", 5)
    assert wins == ["optim.epochs=5 (stored: 3)", "out_dir='runs/y' (stored: 'runs/x')"]
    with pytest.raises(ValueError, match="x.pt.*stage"):
        restore_config({"stage": "third"}, [], source="x.pt")


@pytest.fixture(scope="module")
def nucla_data(tmp_path_factory) -> tuple[Path, Path]:
    """N-UCLA fixture (3 views x 4 samples) prepared at 40 px, and an NTU-like 60-class init."""
    root = tmp_path_factory.mktemp("nucla")
    tree = write_nucla_tree(root / "multiview_action",
                            samples=((1, 1), (2, 2), (11, 3), (12, 4)), frames=5)
    labels = read_labels(REPO / "config" / "labels" / "nucla10.txt")
    index = nucla_prepare(tree, root / "prep", 40, labels)
    assert len(index.samples) == 12
    cfg = load_train_config(SYNTHETIC, [TINY, "stage=full"]).model_config(60)
    save_training_checkpoint(root / "ntu.pt", model=GlimpseClouds(cfg).state_dict())
    return root / "prep", root / "ntu.pt"


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["v3_12", "v2_13", "v1_23"])
def test_nucla_configs_end_to_end(protocol, nucla_data, tmp_path):
    """Each N-UCLA config fine-tunes (stage 2) from a 60-class model and tests on its view."""
    prep, init = nucla_data
    out = tmp_path / "run"
    # One protocol under torchrun (the configs are stage 2: the DDP path), the others in one
    # process to keep the file short.
    launcher = TORCHRUN if protocol == "v3_12" else PYTHON
    config = str(REPO / "config" / "train" / f"nucla_{protocol}.yaml")
    run = _run(launcher + [TRAIN, "--config", config, f"data.root={prep}", f"init={init}",
                           f"out_dir={out}", "model_preset=small", TINY, "data.val_fraction=0.25",
                           "data.test_clips=2", "optim.epochs=1", "amp=false"] + COMMON)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "skipped (shape/name mismatch)" in run.stderr            # 60-class classifiers
    report = json.loads((out / "results.json").read_text())
    assert report["dataset"] == "nucla" and report["protocol"] == protocol
    assert report["model"] == "glimpse_clouds" and report["samples"] == 4   # the held-out view
    assert torch.load(out / "last.pt", weights_only=True)["config"]["stage"] == "full"
