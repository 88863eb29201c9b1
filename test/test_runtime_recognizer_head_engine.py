"""The Recognizer with the exported head step (head_engine: auto) against the eager head.

Both recognizers use the same backbone engine, so the head is the only difference: the eager
PyTorch ``GlimpseCloudsHead.step`` vs its ONNX export run by ONNX Runtime / OpenVINO. The memory
holds K = 3 frames and every sequence is longer (it fills, then drops whole frames), and a
reset in the middle must restart both identically.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from glimpse_ros.config import ModelConfig, RecognizerConfig
from glimpse_ros.model.checkpoint import save_checkpoint
from glimpse_ros.model.glimpse_clouds import GlimpseClouds
from glimpse_ros.runtime.head_runner import head_engine_choice
from runtime_fixtures import make_recognizer as make, random_frames as frames

T = 4
BACKENDS = ["onnxruntime", "openvino"]
CFG = ModelConfig.small(num_classes=5, frames=T, crop_size=64, resize_size=72, memory_slots=3)


def _checkpoint(tmp_path_factory, padding: str):
    torch.manual_seed(1)
    model = GlimpseClouds(dataclasses.replace(CFG, temporal_padding=padding)).eval()
    with torch.no_grad():  # uneven initial assignment, non-identity metric
        model.head.memory.initial_logits.normal_()
        model.head.memory.init_metric(torch.randn(40, CFG.feature_dim).abs())
    path = tmp_path_factory.mktemp(padding) / f"{padding}.safetensors"
    return save_checkpoint(path, model, [f"c{i}" for i in range(CFG.num_classes)])


@pytest.fixture(scope="module")
def causal(tmp_path_factory):
    """A small causal model (streamed frame by frame)."""
    return _checkpoint(tmp_path_factory, "causal")


@pytest.fixture(scope="module")
def symmetric(tmp_path_factory):
    """A small symmetric model (windowed)."""
    return _checkpoint(tmp_path_factory, "symmetric")


def _run_with_reset(rec, imgs: list[np.ndarray], reset_at: int) -> list:
    """Push every frame (30 fps stamps), resetting before frame ``reset_at``."""
    out = []
    for i, img in enumerate(imgs):
        if i == reset_at:
            rec.reset()
        out.extend(rec.push(img, i / 30.0))
    return out


def _assert_same(got: list, want: list) -> None:
    assert len(got) == len(want) > 0
    for a, b in zip(got, want):
        assert a.stamp == b.stamp
        np.testing.assert_allclose(a.probs, b.probs, rtol=0, atol=1e-5)
        np.testing.assert_allclose(a.glimpses, b.glimpses, rtol=0, atol=1e-5)
        assert (a.window_probs is None) == (b.window_probs is None)
        if a.window_probs is not None:
            np.testing.assert_allclose(a.window_probs, b.window_probs, rtol=0, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_causal_stream_exported_head_equals_eager(causal, tmp_path, backend) -> None:
    pytest.importorskip(backend)
    imgs = frames(20, seed=2)
    kw = dict(backend=backend, engine_cache_dir=str(tmp_path))
    exported = make(causal, **kw)
    eager = make(causal, head_engine="torch", **kw)
    assert exported.streaming and exported.head_runner.name == backend
    assert eager.head_runner.name == "torch"
    got, want = _run_with_reset(exported, imgs, 11), _run_with_reset(eager, imgs, 11)
    assert len(got) == 20  # every frame labelled; 11 frames before the reset > K = 3
    _assert_same(got, want)
    assert exported.head_runner.state["step"][0] == 9  # frames since the reset


@pytest.mark.parametrize("backend", BACKENDS)
def test_exported_head_takes_the_backbone_threads_on_openvino(causal, tmp_path, backend) -> None:
    """The head step gets the engine threads (2) on OpenVINO, one on ONNX Runtime; both agree."""
    pytest.importorskip(backend)
    imgs = frames(8, seed=4)
    kw = dict(backend=backend, engine_cache_dir=str(tmp_path), num_threads=2)
    exported = make(causal, **kw)
    eager = make(causal, head_engine="torch", **kw)
    assert exported.head_runner.engine.threads == (2 if backend == "openvino" else 1)
    _assert_same(_run_with_reset(exported, imgs, 5), _run_with_reset(eager, imgs, 5))


@pytest.mark.parametrize("head_mode", ["stream", "clip"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_windowed_exported_head_equals_eager(symmetric, tmp_path, backend, head_mode) -> None:
    pytest.importorskip(backend)
    imgs = frames(22, seed=3)
    kw = dict(backend=backend, engine_cache_dir=str(tmp_path), stride=2, head_mode=head_mode)
    exported = make(symmetric, **kw)
    eager = make(symmetric, head_engine="torch", **kw)
    assert exported.head_runner.name == backend and eager.head_runner.name == "torch"
    got, want = _run_with_reset(exported, imgs, 12), _run_with_reset(eager, imgs, 12)
    assert len(got) == 12 + 10  # all frames: 12 and 10 are whole strides after the first T
    _assert_same(got, want)


def test_choice_of_head_engine() -> None:
    """Exported only for onnxruntime/openvino backbones with the fp32 head and head_engine auto."""
    auto, torch_head = RecognizerConfig(), RecognizerConfig(head_engine="torch")
    int8 = RecognizerConfig(head_precision="int8")
    assert head_engine_choice(auto, "openvino")[0] == "openvino"
    assert head_engine_choice(auto, "onnxruntime")[0] == "onnxruntime"
    assert head_engine_choice(torch_head, "openvino")[0] == "torch"
    assert head_engine_choice(int8, "onnxruntime")[0] == "torch"
    assert head_engine_choice(auto, "torch")[0] == "torch"
    assert head_engine_choice(auto, "tensorrt")[0] == "torch"
    assert head_engine_choice(auto, "openvino", exportable=False)[0] == "torch"
    with pytest.raises(ValueError, match="recognizer.head_engine"):
        RecognizerConfig(head_engine="onnx")


def test_torch_backbone_and_int8_head_keep_the_eager_head(causal, tmp_path) -> None:
    assert make(causal).head_runner.name == "torch"
    pytest.importorskip("onnxruntime")
    if "fbgemm" not in torch.backends.quantized.supported_engines:
        pytest.skip("no quantised torch engine")
    rec = make(causal, backend="onnxruntime", head_precision="int8",
               engine_cache_dir=str(tmp_path))
    assert rec.head_runner.name == "torch"
    assert not list((tmp_path / "onnx").glob("head*.onnx"))  # nothing exported for it


def test_head_export_cached_and_damaged_file_replaced(causal, tmp_path, caplog) -> None:
    pytest.importorskip("onnxruntime")
    kw = dict(backend="onnxruntime", engine_cache_dir=str(tmp_path))
    make(causal, **kw)
    (head,) = (tmp_path / "onnx").glob("head*.onnx")
    mtime = head.stat().st_mtime_ns
    make(causal, **kw)
    assert head.stat().st_mtime_ns == mtime  # reused
    head.write_bytes(b"not an onnx file")
    rec = make(causal, **kw)
    assert "exporting again" in caplog.text and rec.head_runner.name == "onnxruntime"
    assert len(_run_with_reset(rec, frames(5), 99)) == 5
