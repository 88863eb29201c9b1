"""``head_precision: int8``: the quantised head copy against the fp32 head (small random model)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glimpse_ros.config import ModelConfig, RecognizerConfig
from glimpse_ros.config_loader import load_dataclass
from glimpse_ros.model.checkpoint import save_checkpoint
from glimpse_ros.model.glimpse_clouds import GlimpseClouds
from glimpse_ros.model.quantize import Int8GRUCell, prepare_head, quantize_head
from glimpse_ros.runtime.recognizer import Recognizer

T = 4
LABELS = ["a", "b", "c", "d"]
# Max abs difference of per-frame class probabilities, int8 vs fp32 head: measured 0.014 on this
# model, whose classifier weights are scaled up so that logits span several units and the
# probabilities spread over [0.001, 0.9] (a worst case; random weights give near-uniform ones).
PROB_TOL = 0.03
GLIMPSE_TOL = 0.02  # crop-normalised units (the crop spans 2)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """Small random model with a non-identity memory metric and confident classifiers."""
    torch.manual_seed(0)
    cfg = ModelConfig.small(num_classes=4, frames=T, crop_size=64, resize_size=72)
    model = GlimpseClouds(cfg).eval()
    with torch.no_grad():
        # A learned-looking metric (identity would be exact in float16) ...
        model.head.memory.init_metric(torch.randn(64, cfg.feature_dim).abs())
        # ... and logits of a few units, so probabilities are far from uniform.
        for fc in model.head.workers.classifiers:
            fc.weight.mul_(30.0)
    path = tmp_path_factory.mktemp("ckpt") / "small.safetensors"
    save_checkpoint(path, model, LABELS)
    return path


def make(checkpoint, **kw) -> Recognizer:
    """Recognizer on the small checkpoint (torch backend, no smoothing)."""
    return Recognizer(RecognizerConfig(backend="torch", smoothing=0.0, num_threads=1, **kw),
                      checkpoint)


def push_all(rec: Recognizer, n: int, seed: int = 0) -> list:
    """Push ``n`` random 24x32 frames at 25 Hz; return every result."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        out.extend(rec.push(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), i * 0.04))
    return out


def test_config_accepts_fp32_int8_only() -> None:
    """head_precision is an enum defaulting to fp32; other values are rejected by name."""
    assert RecognizerConfig().head_precision == "fp32"
    assert load_dataclass(RecognizerConfig, {"head_precision": "int8"}).head_precision == "int8"
    with pytest.raises(ValueError, match="recognizer.head_precision"):
        RecognizerConfig(head_precision="fp16")


def test_int8_recognizer_is_close_to_fp32(checkpoint) -> None:
    """Same frames, same stepping: probabilities and glimpses agree within the stated tolerance."""
    fp32 = make(checkpoint, stride=2)
    int8 = make(checkpoint, stride=2, head_precision="int8")
    assert isinstance(int8.head.workers.cells[0], Int8GRUCell)
    assert isinstance(fp32.head.workers.cells[0], torch.nn.GRUCell)
    a, b = push_all(fp32, T + 8), push_all(int8, T + 8)
    assert [r.stamp for r in a] == [r.stamp for r in b] and len(a) == T + 8
    probs_a = np.stack([r.probs for r in a])  # (frames, N)
    probs_b = np.stack([r.probs for r in b])
    diff = np.abs(probs_a - probs_b).max()
    assert diff <= PROB_TOL, diff
    assert 0 < diff  # really a different computation
    assert probs_a.max() - probs_a.min() > 20 * PROB_TOL  # the tolerance is not vacuous
    glimpses = np.abs(np.stack([r.glimpses for r in a]) - np.stack([r.glimpses for r in b]))
    assert glimpses.max() <= GLIMPSE_TOL


@pytest.mark.parametrize("stride", [1, 3])
def test_int8_steps_every_frame_once_in_order(checkpoint, stride) -> None:
    """The int8 head is stepped exactly like the fp32 one: every frame once, in order."""
    rec = make(checkpoint, stride=stride, head_precision="int8")
    n = T + 3 * stride + 1
    results = push_all(rec, n)
    stepped = T + stride * ((n - T) // stride)
    assert [r.stamp for r in results] == [i * 0.04 for i in range(stepped)]
    assert rec.counters["stepped_frames"] == stepped


def test_int8_stream_equals_clip_on_first_window(checkpoint) -> None:
    """int8 stream and int8 clip give identical outputs on the first window."""
    stream = push_all(make(checkpoint, stride=3, head_precision="int8", head_mode="stream"), T)
    clip = push_all(make(checkpoint, stride=3, head_precision="int8", head_mode="clip"), T)
    assert len(stream) == len(clip) == T
    for a, b in zip(stream, clip):
        np.testing.assert_allclose(a.probs, b.probs, rtol=0, atol=1e-6)
        np.testing.assert_allclose(a.glimpses, b.glimpses, rtol=0, atol=1e-6)


def test_quantize_head_leaves_the_float_head_untouched() -> None:
    """The int8 copy shares nothing with the float head, whose parameters stay as they were."""
    torch.manual_seed(1)
    head = GlimpseClouds(ModelConfig.small(num_classes=3, frames=2)).head.eval()
    before = {k: v.clone() for k, v in head.state_dict().items()}
    quantized = quantize_head(head)
    assert isinstance(head.workers.cells[0], torch.nn.GRUCell)
    after = head.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    z, c = torch.randn(1, head.feature_dim, 2, 2, 2), torch.randn(1, 2, head.context_dim)
    with torch.inference_mode():
        out = quantized(z, c)  # the clip forward is the same loop over step
    assert out.logits.shape == (1, 3) and bool(torch.isfinite(out.logits).all())


def test_fp32_inference_copy_is_exact() -> None:
    """The fp32 copy (contiguous glimpse-GRU blocks) computes the trained head's outputs."""
    torch.manual_seed(2)
    head = GlimpseClouds(ModelConfig.small(num_classes=3, frames=3)).head.eval()
    with torch.no_grad():
        head.memory.init_metric(torch.randn(32, head.feature_dim).abs())
    fp32 = prepare_head(head, "fp32")
    assert fp32.glimpse_rnn is not head.glimpse_rnn
    assert fp32.workers.cells[0].weight_ih is head.workers.cells[0].weight_ih  # shared, no copy
    z, c = torch.randn(2, head.feature_dim, 3, 2, 2).relu(), torch.randn(2, 3, head.context_dim)
    with torch.inference_mode():
        a, b = head(z, c), fp32(z, c)
    torch.testing.assert_close(b.step_logits, a.step_logits, rtol=0, atol=1e-6)
    torch.testing.assert_close(b.glimpses, a.glimpses, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="fp16"):
        prepare_head(head, "fp16")
