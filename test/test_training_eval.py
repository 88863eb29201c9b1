"""Training config loading/overrides and evaluation metrics/report."""

from __future__ import annotations

import json
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from glimpse_ros.config import ModelConfig
from glimpse_ros.model.checkpoint import save_checkpoint
from glimpse_ros.model.glimpse_clouds import GlimpseClouds
from training.checkpoints import load_exact, load_matching, save_training_checkpoint
from training.config import load_train_config
from training.evaluate import main as evaluate_main
from training.evaluate import metrics, predict, results_table, write_report


def test_yaml_and_overrides(tmp_path):
    """Overrides reach nested sections, are typed, and the small preset builds a ModelConfig."""
    cfg = load_train_config("config/train/synthetic.yaml",
                            ["optim.lr=3e-4", "data.protocol=cv", "model={frames: 4}"])
    assert cfg.optim.lr == 3e-4 and cfg.data.protocol == "cv"
    m = cfg.model_config(9)
    assert m.num_classes == 9 and m.frames == 4 and m.crop_size == 112
    # The demo recipe trains a causal (streaming) model; the paper's variant stays selectable.
    assert load_train_config("config/train/synthetic.yaml").model_config(9).causal
    sym = load_train_config("config/train/synthetic.yaml", ["model.temporal_padding=symmetric"])
    assert sym.model_config(9).temporal_padding == "symmetric"
    with pytest.raises(ValueError, match="optim.lrr"):
        load_train_config("config/train/synthetic.yaml", ["optim.lrr=1"])
    with pytest.raises(ValueError, match="optim.epochs"):
        load_train_config(None, ["optim.epochs=many"])
    with pytest.raises(ValueError, match="stage"):
        load_train_config(None, ["stage=third"])
    for name in ("ntu_cs", "ntu_cv", "nucla_v3_12", "nucla_v2_13", "nucla_v1_23"):
        cfg = load_train_config(f"config/train/{name}.yaml")
        assert cfg.optim.lr == 1e-4 and cfg.model_config(10).feature_dim == 2048


def test_metrics_and_report(tmp_path):
    """Top-1/top-5, per-class accuracy and the confusion matrix are computed from logits."""
    logits = np.zeros((4, 6))
    logits[0, 0] = logits[1, 1] = logits[2, 0] = 1.0       # sample 2 (truth 2) predicted 0
    logits[3, 5], logits[3, 4] = 2.0, 1.0                     # sample 3 (truth 4) second best
    labels = np.array([0, 1, 2, 4])
    r = metrics(logits, labels, 6)
    assert r["top1"] == 50.0 and r["top5"] == 100.0
    assert r["per_class"][:3] == [100.0, 100.0, 0.0] and r["per_class"][3] is None
    assert r["confusion"][2][0] == 1 and np.sum(r["confusion"]) == 4
    write_report(r, [f"c{i}" for i in range(6)], tmp_path, "ntu", "cs", "glimpse_clouds")
    assert json.loads((tmp_path / "results.json").read_text())["top1"] == 50.0
    assert cv2.imread(str(tmp_path / "confusion.png")) is not None
    table = results_table(r, "ntu", "cs", "glimpse_clouds")
    assert "86.6" in table and "84.5" in table


class _MeanModel(torch.nn.Module):
    """Logits = per-class mean of the clip, to check clip averaging and de-duplication."""

    def forward(self, video: torch.Tensor, global_only: bool = False) -> SimpleNamespace:
        """(B, 3, T, H, W) -> logits (B, 3): the mean of each colour channel."""
        return SimpleNamespace(logits=video.mean((2, 3, 4)))                      # (B, 3)


def test_predict_averages_clips_and_drops_sampler_padding():
    """Clips of a video are averaged; indices repeated by sampler padding are counted once."""
    video = torch.zeros(3, 2, 3, 1, 1, 1)                     # (B, clips, 3, T, H, W)
    video[0, 0, 0] = 4.0
    video[0, 1, 1] = 2.0                                      # sample 0: (2, 1, 0)
    video[1, :, 2] = 1.0                                      # sample 1: (0, 0, 1)
    video[2] = video[0]                                       # padding repeats sample 0
    batches = [dict(video=video[:2], label=torch.tensor([0, 2]), index=torch.tensor([0, 1])),
               dict(video=video[2:], label=torch.tensor([0]), index=torch.tensor([0]))]
    logits, labels, index = predict(_MeanModel(), batches, torch.device("cpu"), False)
    assert index.tolist() == [0, 1] and labels.tolist() == [0, 2]
    np.testing.assert_allclose(logits, [[2.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def test_test_only_loading_is_strict(tmp_path):
    """Evaluation refuses a checkpoint that would leave tensors at their initial values."""
    small = GlimpseClouds(ModelConfig.small(num_classes=4))
    save_training_checkpoint(tmp_path / "a.pt", model=small.state_dict())
    other = GlimpseClouds(ModelConfig.small(num_classes=6))
    with pytest.raises(ValueError, match="a.pt"):
        load_exact(other, tmp_path / "a.pt")
    assert "global_fc.weight" in load_matching(other, tmp_path / "a.pt")   # fine-tuning skips
    same = GlimpseClouds(ModelConfig.small(num_classes=4))
    load_exact(same, tmp_path / "a.pt")
    for k, v in small.state_dict().items():
        assert torch.equal(v, same.state_dict()[k]), k


def test_evaluate_refuses_other_label_set(tmp_path):
    """Scoring a model against a data set with other label names is an error, not a number."""
    path = tmp_path / "m.safetensors"
    labels = [f"c{i}" for i in range(4)]
    save_checkpoint(path, GlimpseClouds(ModelConfig.small(num_classes=4)), labels, {})
    with pytest.raises(ValueError, match="label names differ"):
        evaluate_main(["--checkpoint", str(path), "--config", "config/train/synthetic.yaml"])
