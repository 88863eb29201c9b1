"""Parameter and MAC counting script (small variant only)."""

import importlib.util
import json

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from glimpse_ros.config import ModelConfig
from glimpse_ros.model.backbone import InflatedResNet
from glimpse_ros.model.stats import count_params, layer_macs, main, measure


def test_layer_macs_by_hand():
    """Conv3d, Linear and GRUCell MACs match hand-computed values."""
    conv = nn.Conv3d(4, 6, (3, 3, 3), stride=(1, 2, 2), padding=1, bias=False)
    x = torch.randn(2, 4, 5, 8, 8)
    assert layer_macs(conv, (x,), conv(x)) == 2 * 6 * 5 * 4 * 4 * (4 * 27)
    lin = nn.Linear(10, 3)
    x = torch.randn(2, 5, 10)
    assert layer_macs(lin, (x,), lin(x)) == 2 * 5 * 3 * 10
    cell = nn.GRUCell(10, 7)
    x = torch.randn(3, 10)
    assert layer_macs(cell, (x,), cell(x)) == 3 * 3 * 7 * (10 + 7)
    assert layer_macs(nn.ReLU(), (x,), x) == 0


def test_small_variant_stats():
    """Parts add up, the backbone matches torch's own counter, the totals are plausible."""
    cfg = ModelConfig.small()
    stats = measure(cfg)
    assert stats["input"] == [1, 3, cfg.frames, cfg.crop_size, cfg.crop_size]
    assert stats["params"]["backbone"] == count_params(InflatedResNet(cfg))
    parts = {k: v for k, v in stats["params"].items() if k != "total"}
    assert sum(parts.values()) == stats["params"]["total"]
    if importlib.util.find_spec("glimpse_ros.model.glimpse_clouds") is not None:
        assert stats["full_model"] and set(parts) == {"backbone", "head", "pose", "global_fc"}
        assert stats["gmacs"]["head"] > 0 and stats["params"]["head"] > 0
    # Backbone: only convolutions, so hooks and FlopCounterMode must agree exactly.
    backbone = InflatedResNet(cfg).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        backbone(torch.randn(stats["input"]))
    assert abs(stats["gmacs"]["backbone"] - counter.get_total_flops() / 2e9) < 1e-9
    assert 0.05 < stats["gmacs"]["backbone"] < 0.5
    assert stats["gmacs_all_ops"] >= stats["gmacs"]["total"] - 1e-9


def test_json_output(capsys):
    """``--json`` prints a parseable report for the requested config."""
    assert main(["--json", "--only", "small", "--frames", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert list(report) == ["small"]
    assert report["small"]["input"][2] == 2
    assert report["small"]["config"]["backbone_width"] == 8
