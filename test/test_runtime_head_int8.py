"""The exported head with int8 weights on OpenVINO: really int8, close to fp32, cached."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glimpse_ros.config import ModelConfig, RecognizerConfig
from glimpse_ros.model.checkpoint import save_checkpoint
from glimpse_ros.model.glimpse_clouds import GlimpseClouds
from glimpse_ros.runtime.head_runner import head_engine_choice
from runtime_fixtures import make_recognizer as make, random_frames as frames

ov = pytest.importorskip("openvino")
pytest.importorskip("nncf")

CFG = ModelConfig.small(num_classes=5, frames=4, crop_size=64, resize_size=72, memory_slots=3,
                        temporal_padding="causal")


@pytest.fixture(scope="module")
def causal(tmp_path_factory):
    """A small causal model with an uneven initial assignment and a non-identity metric."""
    torch.manual_seed(3)
    model = GlimpseClouds(CFG).eval()
    with torch.no_grad():
        model.head.memory.initial_logits.normal_()
        model.head.memory.init_metric(torch.randn(40, CFG.feature_dim).abs())
    path = tmp_path_factory.mktemp("m") / "causal.safetensors"
    return save_checkpoint(path, model, [f"c{i}" for i in range(CFG.num_classes)])


def test_int8_head_on_openvino_has_int8_weights_and_follows_fp32(causal, tmp_path):
    """The head's matrices are stored as i8 in the IR; outputs stay close to the fp32 head."""
    kw = dict(backend="openvino", engine_cache_dir=str(tmp_path))
    fp32 = make(causal, **kw)
    int8 = make(causal, head_precision="int8", **kw)
    assert int8.head_runner.name == "openvino" and int8.head_runner.engine.precision == "int8"
    (ir,) = (tmp_path / "onnx").glob("head-w8-*.xml")
    consts = [op for op in ov.Core().read_model(str(ir)).get_ops()
              if op.get_type_name() == "Constant"]
    int8_weights = sum(int(np.prod(op.get_output_shape(0))) for op in consts
                       if op.get_output_element_type(0) == ov.Type.i8)
    float_weights = sum(int(np.prod(op.get_output_shape(0))) for op in consts
                        if op.get_output_element_type(0) == ov.Type.f32)
    head_weights = sum(p.numel() for p in GlimpseClouds(CFG).head.parameters())
    # Most of the head's weights are int8 now (biases, scales and tiny tensors stay float).
    assert int8_weights > 0.8 * head_weights and float_weights < 0.2 * head_weights
    imgs = frames(16, seed=5)
    a = [r for i, img in enumerate(imgs) for r in fp32.push(img, i / 30.0)]
    b = [r for i, img in enumerate(imgs) for r in int8.push(img, i / 30.0)]
    assert len(a) == len(b) == 16
    worst = max(float(np.abs(x.probs - y.probs).max()) for x, y in zip(a, b))
    assert 0 < worst < 0.02, worst          # changed (int8 weights), but only slightly
    np.testing.assert_allclose([x.glimpses for x in a], [y.glimpses for y in b], atol=0.02)


def test_int8_head_choice_and_cache(causal, tmp_path):
    """int8 runs exported on OpenVINO only; the compressed file is reused, a bad one redone."""
    int8 = RecognizerConfig(head_precision="int8")
    assert head_engine_choice(int8, "openvino")[0] == "openvino"
    assert head_engine_choice(int8, "onnxruntime")[0] == "torch"
    assert head_engine_choice(RecognizerConfig(head_precision="int8", head_engine="torch"),
                              "openvino")[0] == "torch"
    kw = dict(backend="openvino", engine_cache_dir=str(tmp_path), head_precision="int8")
    make(causal, **kw)
    (ir,) = (tmp_path / "onnx").glob("head-w8-*.xml")
    mtime = ir.stat().st_mtime_ns
    make(causal, **kw)
    assert ir.stat().st_mtime_ns == mtime
    ir.write_text("<broken")
    rec = make(causal, **kw)
    assert rec.head_runner.engine.precision == "int8" and ir.stat().st_mtime_ns != mtime
    assert len([r for i, img in enumerate(frames(3)) for r in rec.push(img, i / 30.0)]) == 3
