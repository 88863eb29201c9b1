"""Backbone engines agree with torch; ONNX export; auto selection and precision policy."""

from __future__ import annotations

import logging

import numpy as np
import onnx
import pytest

from glimpse_ros.config import ModelConfig
from glimpse_ros.runtime import factory as engine_mod
from glimpse_ros.runtime.engine import EngineUnavailable
from glimpse_ros.runtime.factory import create_engine, select_backend
from glimpse_ros.runtime.export.cache import export_module_cached
from glimpse_ros.runtime.export.clip import compare, export_backbone
from runtime_fixtures import random_backbone

# Max |engine - torch| relative to max |torch|: fp32 engines differ from torch only in summation
# order (measured ~1e-6 here), so 1e-4 of the output scale catches any real graph difference.
REL_TOL = 1e-4
SHAPE = (1, 3, 4, 64, 64)


@pytest.fixture(scope="module")
def backbone():
    """Small random backbone with non-trivial batch-norm statistics."""
    return random_backbone(ModelConfig.small(frames=4, crop_size=64, resize_size=64))


@pytest.fixture(scope="module")
def onnx_path(backbone, tmp_path_factory):
    """The backbone exported once for the module."""
    return export_backbone(backbone, tmp_path_factory.mktemp("onnx") / "bb.onnx", SHAPE)


def clip(shape=SHAPE, seed=0) -> np.ndarray:
    """Random normalised clip."""
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_export_names_and_opset(onnx_path):
    """The graph has input x, outputs Z and c, opset >= 17."""
    model = onnx.load(str(onnx_path))
    assert [o.name for o in model.graph.output] == ["Z", "c"]
    assert [i.name for i in model.graph.input] == ["x"]
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17


@pytest.mark.parametrize("name", ["onnxruntime", "openvino"])
def test_engine_agrees_with_torch(name, backbone, onnx_path):
    """Every installed ONNX engine matches torch, also for a second (dynamic) shape."""
    pytest.importorskip(name)
    ref_engine = create_engine("torch", backbone, threads=1)
    eng = create_engine(name, onnx_path, threads=1, input_shape=SHAPE)
    assert eng.name == name
    for shape in (SHAPE, (2, 3, 3, 32, 64)):
        x = clip(shape)
        ref, out = ref_engine.run(x), eng.run(x)
        for r, o in zip(ref, out):
            assert r.shape == o.shape and o.dtype == np.float32
            assert compare(r, o)["relative"] < REL_TOL, compare(r, o)


def test_module_source_is_exported_once(backbone, tmp_path):
    """A module given to an ONNX engine is exported into the cache, once per set of weights."""
    first = export_module_cached(backbone, tmp_path, SHAPE)
    mtime = first.stat().st_mtime_ns
    assert export_module_cached(backbone, tmp_path, SHAPE) == first
    assert first.stat().st_mtime_ns == mtime
    eng = create_engine("onnxruntime", backbone, threads=1, cache_dir=tmp_path, input_shape=SHAPE)
    assert eng.run(clip())[0].shape == (1, 256, 4, 2, 2)


def test_auto_selection_prefers_tensorrt_then_openvino(monkeypatch, caplog):
    """Auto: TensorRT with a GPU, else the first installed CPU engine; the choice is logged."""
    status = {"tensorrt": (False, "tensorrt is not installed"), "openvino": (True, "ok"),
              "onnxruntime": (True, "ok"), "torch": (True, "ok")}
    monkeypatch.setattr(engine_mod, "engine_status", lambda n: status[n])
    assert select_backend("auto")[0] == "openvino"
    status["openvino"] = (False, "openvino is not installed")
    name, why = select_backend("auto")
    assert name == "onnxruntime" and "openvino" in why
    status["tensorrt"] = (True, "gpu")
    assert select_backend("auto")[0] == "tensorrt"


def test_auto_logs_choice(backbone, caplog, tmp_path):
    """create_engine('auto') logs what it picked and why."""
    with caplog.at_level(logging.INFO, logger="glimpse_ros.runtime"):
        eng = create_engine("auto", backbone, threads=1, cache_dir=tmp_path, input_shape=SHAPE)
    assert f"backend auto -> {eng.name}" in caplog.text


def test_fp16_policy(backbone, onnx_path, caplog, tmp_path):
    """fp16 on an explicit CPU engine raises; auto falls back to fp32 with a warning."""
    with pytest.raises(ValueError, match="fp16"):
        create_engine("onnxruntime", onnx_path, "fp16")
    with pytest.raises(ValueError, match="fp16"):
        create_engine("torch", backbone, "fp16")
    with caplog.at_level(logging.WARNING, logger="glimpse_ros.runtime"):
        eng = create_engine("auto", backbone, "fp16", threads=1, cache_dir=tmp_path,
                            input_shape=SHAPE)
    if eng.name != "tensorrt":
        assert eng.precision == "fp32" and "fp16" in caplog.text


def test_tensorrt_without_gpu_is_a_clear_error(onnx_path):
    """Without tensorrt or a GPU the tensorrt backend names what is missing."""
    if engine_mod.engine_status("tensorrt")[0]:
        pytest.skip("tensorrt and a GPU are present")
    with pytest.raises(EngineUnavailable, match="tensorrt"):
        create_engine("tensorrt", onnx_path)


def test_bad_inputs(backbone, onnx_path):
    """Unknown engine names, missing files and malformed clips raise ValueError."""
    with pytest.raises(ValueError, match="unknown engine"):
        create_engine("tflite", onnx_path)
    with pytest.raises(ValueError, match="not found"):
        create_engine("onnxruntime", onnx_path.parent / "missing.onnx")
    eng = create_engine("torch", backbone, threads=1)
    with pytest.raises(ValueError, match="float32"):
        eng.run(clip().astype(np.float64))
    with pytest.raises(ValueError, match=r"\(B, 3, T, H, W\)"):
        eng.run(np.zeros((3, 4, 64, 64), np.float32))
