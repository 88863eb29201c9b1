"""The ablation switches of ModelConfig: oracle boxes, Σ-glimpse pooling, global fusion.

Each is checked against an independent computation with the same weights: the oracle head reads
exactly the boxes it is given; the Σ head is one ``nn.GRUCell`` fed ``Σ_g v_g`` and its linear
classifier, applied by hand; the fused model's logits are the plain model's plus the global
classifier on the pooled layer4 map. Oracle boxes from joints are checked by hand.
"""

from __future__ import annotations

import pytest
import torch

from glimpse_ros.config import ModelConfig
from glimpse_ros.model.glimpse_clouds import GlimpseClouds
from glimpse_ros.model.head import GlimpseCloudsHead
from training.engine import freeze_untrained
from training.oracle import ORACLE_HALF_SIZE, oracle_glimpses
from training.synthetic.body import J

SIZE = 64  # input crop: a 2x2 layer4 map


def _cfg(**kw) -> ModelConfig:
    return ModelConfig.small(num_classes=5, frames=3, memory_slots=3, crop_size=SIZE,
                             resize_size=SIZE, **kw)


def _features(seed: int = 0, batch: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    cfg = _cfg()
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, cfg.feature_dim, 3, 2, 2, generator=gen).relu(),
            torch.randn(batch, 3, cfg.context_dim, generator=gen))


@torch.no_grad()
def test_oracle_head_reads_the_given_boxes_and_refuses_to_guess() -> None:
    """Given boxes come out as the glimpses; missing / unexpected boxes raise."""
    torch.manual_seed(0)
    head = GlimpseCloudsHead(_cfg(glimpse_locations="oracle")).eval()
    z, c = _features()
    boxes = torch.rand(2, 3, 3, 4) * 0.8                          # (B, T, G, 4)
    out = head(z, c, given=boxes)
    torch.testing.assert_close(out.glimpses, boxes)
    with pytest.raises(ValueError, match="oracle"):
        head(z, c)
    with pytest.raises(ValueError, match="given glimpses must be"):
        head(z, c, given=boxes[:, :, :2])
    with pytest.raises(ValueError, match="oracle"):
        GlimpseCloudsHead(_cfg()).eval()(z, c, given=boxes)


@torch.no_grad()
def test_sum_pooling_is_one_gru_over_the_summed_glimpse_vectors() -> None:
    """Per frame: r = GRUCell(Σ_g v_g, r), logits = W r; the memory stays empty."""
    torch.manual_seed(1)
    head = GlimpseCloudsHead(_cfg(glimpse_pooling="sum", num_workers=1)).eval()
    z, c = _features(seed=1)
    out = head(z, c)
    cell, classifier = head.workers.cells[0], head.workers.classifiers[0]
    r = torch.zeros(2, head.cfg.worker_hidden)
    for t in range(3):
        r = cell(out.vectors[:, t].sum(dim=1), r)                 # Σ_g v_{t,g}
        torch.testing.assert_close(out.step_logits[:, t], classifier(r), atol=1e-6, rtol=0)
    assert bool((out.assignment == 1).all())
    state = head.initial_state(2)
    for t in range(3):
        state, _ = head.step(state, z[:, :, t], c[:, t])
    assert state.memory_fill.tolist() == [0, 0]


def test_sum_pooling_needs_one_worker() -> None:
    """A sum into several identical workers is refused, naming the field."""
    with pytest.raises(ValueError, match="model.glimpse_pooling: sum feeds one GRU"):
        _cfg(glimpse_pooling="sum")
    with pytest.raises(ValueError, match="model.glimpse_pooling"):
        _cfg(glimpse_pooling="mean")


@torch.no_grad()
def test_global_fusion_adds_the_global_classifier_to_the_head_logits() -> None:
    """Fused logits = plain logits + global_fc(mean of Z), per step and for the clip."""
    torch.manual_seed(2)
    fused = GlimpseClouds(_cfg(global_fusion=True)).eval()
    plain = GlimpseClouds(_cfg()).eval()
    plain.load_state_dict(fused.state_dict())
    x = torch.randn(2, 3, 3, SIZE, SIZE)
    a, b = fused(x), plain(x)
    z, _ = plain.backbone(x)
    global_logits = plain.global_fc(z.mean(dim=(2, 3, 4)))
    torch.testing.assert_close(a.logits, b.logits + global_logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(a.step_logits, b.step_logits + global_logits[:, None],
                               atol=1e-5, rtol=0)
    assert b.global_logits is None and a.global_logits is not None


def test_freeze_untrained_follows_the_switches() -> None:
    """Frozen backbone, fused global classifier, idle locator / memory are (not) trained."""
    def trained(model, **kw):
        ids = {id(p) for p in freeze_untrained(model, "full", **kw)}
        return {name.split(".")[0] + "." + name.split(".")[1] if name.startswith("head.")
                else name.split(".")[0] for name, p in model.named_parameters() if id(p) in ids}

    base = trained(GlimpseClouds(_cfg()))
    assert "backbone" in base and "global_fc" not in base and "head.memory" in base
    assert "backbone" not in trained(GlimpseClouds(_cfg()), freeze_backbone=True)
    assert "global_fc" in trained(GlimpseClouds(_cfg(global_fusion=True)))
    oracle = trained(GlimpseClouds(_cfg(glimpse_locations="oracle")))
    assert "head.locator" not in oracle and "head.glimpse_rnn" not in oracle
    assert "head.memory" not in trained(GlimpseClouds(_cfg(glimpse_pooling="sum",
                                                           num_workers=1)))


def test_oracle_boxes_by_hand() -> None:
    """Cluster means of visible body-0 joints, fixed size; fall-backs when hidden."""
    joints = torch.zeros(1, 2, 2, 25, 2)
    mask = torch.zeros(1, 2, 2, 25, dtype=torch.bool)
    # frame 0: head (0.2, -0.6) and right hand (0.6, -0.2) visible; left foot (0.1, 0.8)
    joints[0, 0, 0, J["Head"]] = torch.tensor([0.2, -0.6])
    joints[0, 0, 0, J["HandRight"]] = torch.tensor([0.6, -0.2])
    joints[0, 0, 0, J["FootLeft"]] = torch.tensor([0.1, 0.8])
    joints[0, 0, 1, J["FootLeft"]] = torch.tensor([-0.9, -0.9])   # body 1: ignored
    for name in ("Head", "HandRight", "FootLeft"):
        mask[0, 0, 0, J[name]] = True
    mask[0, 0, 1, J["FootLeft"]] = True
    # frame 1: only a hip visible -> the arms/head cluster falls back to the mean of all
    joints[0, 1, 0, J["HipLeft"]] = torch.tensor([-0.3, 0.4])
    mask[0, 1, 0, J["HipLeft"]] = True
    boxes = oracle_glimpses(joints, mask, num_glimpses=4)          # (1, 2, 4, 4)
    s = ORACLE_HALF_SIZE
    expected = torch.tensor([
        [[0.4, -0.4, s, s], [0.1, 0.8, s, s], [0.3, 0.0, s, s], [0.4, -0.4, s, s]],
        [[-0.3, 0.4, s, s], [-0.3, 0.4, s, s], [-0.3, 0.4, s, s], [-0.3, 0.4, s, s]]])
    torch.testing.assert_close(boxes[0], expected)
    empty = oracle_glimpses(joints, torch.zeros_like(mask), num_glimpses=3)
    torch.testing.assert_close(empty[..., :2], torch.zeros(1, 2, 3, 2))


@pytest.mark.parametrize("switch", [dict(glimpse_locations="oracle"), dict(global_fusion=True)])
def test_runtime_refuses_ablation_only_models(switch, tmp_path) -> None:
    """The recognizer (and, for oracle, the head export) refuse what they cannot compute."""
    from glimpse_ros.config import RecognizerConfig
    from glimpse_ros.model.checkpoint import save_checkpoint
    from glimpse_ros.runtime.export.head import export_head
    from glimpse_ros.runtime.recognizer import Recognizer

    model = GlimpseClouds(_cfg(**switch)).eval()
    path = save_checkpoint(tmp_path / "m.safetensors", model, [f"c{i}" for i in range(5)])
    with pytest.raises(ValueError, match="ablation model"):
        Recognizer(RecognizerConfig(backend="torch"), checkpoint_path=str(path))
    if "glimpse_locations" in switch:
        with pytest.raises(ValueError, match="oracle"):
            export_head(model.head, tmp_path / "head.onnx")
