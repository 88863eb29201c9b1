"""Backbone precision policy: refusals, OpenVINO's compiled precision, bf16 and int8 engines."""

from __future__ import annotations

import numpy as np
import pytest

from glimpse_ros.config import ModelConfig, RecognizerConfig
from glimpse_ros.model.backbone import InflatedResNet
from glimpse_ros.runtime import precision as precision_mod
from glimpse_ros.runtime.calibration import synthetic_clips
from glimpse_ros.runtime.factory import create_engine
from glimpse_ros.runtime.export.cache import export_module_cached
from glimpse_ros.runtime.precision import cpu_flags, native_bf16, native_int8
from glimpse_ros.runtime.factory import create_step_engine
from runtime_fixtures import random_backbone

ov = pytest.importorskip("openvino")
SHAPE = (1, 3, 4, 64, 64)
FRAME = (1, 3, 64, 64)
# int8 and bf16 approximate fp32: these bounds only catch a broken model (wrong scales, a
# quantiser on the wrong tensor), the measured deviation is reported by `make bench`.
LOOSE_REL, LOOSE_COS = 0.25, 0.98


def small_backbone(padding: str) -> InflatedResNet:
    """Small random backbone with non-trivial batch-norm statistics."""
    return random_backbone(ModelConfig.small(frames=4, crop_size=64, resize_size=64,
                                             temporal_padding=padding))


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """Cache directory shared by the module (ONNX exports, int8 models)."""
    return tmp_path_factory.mktemp("precision")


@pytest.fixture(scope="module")
def clip_onnx(work):
    """The small symmetric backbone's clip export."""
    return export_module_cached(small_backbone("symmetric"), work, SHAPE)


def test_precision_config_values():
    """The precision key takes fp32 (default), fp16, bf16, int8, int8_mixed; others name it."""
    assert RecognizerConfig().precision == "fp32"
    for p in ("fp16", "bf16", "int8", "int8_mixed"):
        assert RecognizerConfig(precision=p).precision == p
    with pytest.raises(ValueError, match="recognizer.precision"):
        RecognizerConfig(precision="int4")


def test_native_detection_from_flags_and_capabilities():
    """bf16 needs a CPU flag and OpenVINO's BF16 capability; int8 OpenVINO's INT8 capability."""
    text = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16\nbogomips\t: 1\n"
    assert cpu_flags(text) == {"fpu", "sse", "avx2", "avx512f", "avx512_bf16"}
    assert cpu_flags("no flags here") == set()
    ok, why = native_bf16({"avx2", "fma"}, ("FP32", "BF16"))
    assert not ok and "avx512_bf16" in why
    ok, why = native_bf16({"amx_bf16"}, ("FP32", "INT8"))
    assert not ok and "OpenVINO" in why
    assert native_bf16({"amx_bf16"}, ("FP32", "BF16"))[0]
    assert not native_int8(("FP32",))[0]
    assert native_int8(("FP32", "INT8"))[0]


def test_precision_refusals(clip_onnx, work, monkeypatch):
    """bf16/int8 are OpenVINO-only; bf16 without native support is refused, not emulated."""
    with pytest.raises(ValueError, match="openvino engine only"):
        create_engine("onnxruntime", clip_onnx, "bf16")
    with pytest.raises(ValueError, match="openvino engine only"):
        create_engine("torch", small_backbone("symmetric"), "int8")
    with pytest.raises(ValueError, match="precision must be one of"):
        create_engine("openvino", clip_onnx, "int4")
    with pytest.raises(ValueError, match="input_shape"):
        create_engine("openvino", clip_onnx, "int8")
    monkeypatch.setattr(precision_mod, "native_bf16",
                        lambda: (False, "the CPU has no native bf16 (test)"))
    with pytest.raises(ValueError, match="bf16 refused: the CPU has no native bf16"):
        create_engine("openvino", clip_onnx, "bf16", input_shape=SHAPE)
    with pytest.raises(ValueError, match="bf16 refused"):
        create_step_engine("openvino", small_backbone("causal"), "bf16", cache_dir=work,
                           frame_shape=FRAME)
    # int8_mixed runs its float stages in bf16: refused without it, pointing at int8.
    monkeypatch.setattr(precision_mod, "native_int8", lambda: (True, "int8 (test)"))
    with pytest.raises(ValueError, match=r"int8_mixed refused: the CPU has no native "
                                         r"bf16.*\(use fp32, or int8\)"):
        create_engine("openvino", clip_onnx, "int8_mixed", input_shape=SHAPE)
    with pytest.raises(ValueError, match="openvino engine only"):
        create_engine("onnxruntime", clip_onnx, "int8_mixed")
    monkeypatch.setattr(precision_mod, "native_int8", lambda: (False, "no INT8 (test)"))
    with pytest.raises(ValueError, match="int8 refused: no INT8"):
        create_engine("openvino", clip_onnx, "int8", input_shape=SHAPE)
    with pytest.raises(ValueError, match=r"int8_mixed refused: no INT8.*\(use fp32\)"):
        create_engine("openvino", clip_onnx, "int8_mixed", input_shape=SHAPE)


def test_openvino_fp32_is_explicit_f32(clip_onnx):
    """fp32 compiles with INFERENCE_PRECISION_HINT f32, read back from the compiled model.

    On a CPU with native bf16 the plugin's own default is bf16: checked too, so that this test
    would catch a missing hint there.
    """
    eng = create_engine("openvino", clip_onnx, "fp32", threads=1, input_shape=SHAPE)
    assert eng.precision == "fp32" and eng.compiled_precision == "f32"
    if native_bf16()[0]:
        core = ov.Core()
        default = core.compile_model(core.read_model(str(clip_onnx)), "CPU")
        assert default.get_property("INFERENCE_PRECISION_HINT").get_type_name() == "bf16"


def deviation(ref: np.ndarray, other: np.ndarray) -> tuple[float, float]:
    """Max |difference| relative to max |ref|, and the cosine similarity."""
    a, b = ref.astype(np.float64).ravel(), other.astype(np.float64).ravel()
    rel = float(np.abs(a - b).max() / np.abs(a).max())
    return rel, float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_openvino_bf16(clip_onnx):
    """bf16 compiles as bf16 and approximates fp32 (it is not silently fp32 either)."""
    if not native_bf16()[0]:
        pytest.skip(native_bf16()[1])
    x = np.random.default_rng(0).standard_normal(SHAPE).astype(np.float32)
    ref = create_engine("openvino", clip_onnx, "fp32", threads=1, input_shape=SHAPE).run(x)
    eng = create_engine("openvino", clip_onnx, "bf16", threads=1, input_shape=SHAPE)
    assert eng.compiled_precision == "bf16"
    for r, o in zip(ref, eng.run(x)):
        rel, cos = deviation(r, o)
        assert 1e-6 < rel < LOOSE_REL and cos > LOOSE_COS


def test_int8_clip_engine_runs_close_to_fp32_and_is_cached(clip_onnx, work, monkeypatch):
    """The int8 clip model approximates fp32 on a synthetic clip; it is reused from the cache."""
    from glimpse_ros.runtime import int8 as int8_mod

    if not native_int8()[0]:
        pytest.skip(native_int8()[1])
    x = synthetic_clips(2, SHAPE[2], SHAPE[3], seed=123)[1]
    np.testing.assert_array_equal(x, synthetic_clips(2, SHAPE[2], SHAPE[3], seed=123)[1])
    ref = create_engine("openvino", clip_onnx, "fp32", threads=1, input_shape=SHAPE).run(x)
    eng = create_engine("openvino", clip_onnx, "int8", threads=1, cache_dir=work,
                        input_shape=SHAPE)
    assert eng.precision == "int8" and eng.onnx_path.suffix == ".xml"
    assert eng.onnx_path == int8_mod.int8_path(clip_onnx, work, SHAPE)
    out = eng.run(x)
    for r, o in zip(ref, out):
        rel, cos = deviation(r, o)
        assert 1e-5 < rel < LOOSE_REL and cos > LOOSE_COS
    # A second engine loads the cached model instead of calibrating again.
    monkeypatch.setattr(int8_mod, "quantize", lambda *a, **k: pytest.fail("re-quantised"))
    again = create_engine("openvino", clip_onnx, "int8", threads=1, cache_dir=work,
                          input_shape=SHAPE)
    np.testing.assert_array_equal(again.run(x)[0], out[0])


def _assert_steps_track(ref, eng) -> None:
    """``eng``'s steps stay close to ``ref``'s (fp32) over a 6-frame synthetic clip."""
    clip = synthetic_clips(1, 6, FRAME[2], seed=321)[0]  # (1, 3, 6, H, W)
    s_ref = s_q = None
    for t in range(clip.shape[2]):
        frame = np.ascontiguousarray(clip[:, :, t])
        z_ref, c_ref, s_ref = ref.step(frame, s_ref)
        z_q, c_q, s_q = eng.step(frame, s_q)
        for r, o in ((z_ref, z_q), (c_ref, c_q)):
            rel, cos = deviation(r, o)
            assert rel < LOOSE_REL and cos > LOOSE_COS, (t, rel, cos)


def test_int8_step_engine_close_to_fp32(work):
    """The int8 step of a causal backbone tracks the fp32 step over more than T frames."""
    if not native_int8()[0]:
        pytest.skip(native_int8()[1])
    backbone = small_backbone("causal")
    ref = create_step_engine("openvino", backbone, "fp32", threads=1, cache_dir=work,
                             frame_shape=FRAME)
    eng = create_step_engine("openvino", backbone, "int8", threads=1, cache_dir=work,
                             frame_shape=FRAME)
    assert eng.precision == "int8" and eng.compiled_precision == "f32"
    _assert_steps_track(ref, eng)


def test_high_resolution_ops_are_the_stem_and_layer1(tmp_path):
    """The mixed model's float layers, counted from the backbone's modules.

    Step graph convolutions: the stem, layer1's block (conv1, one conv per temporal tap of
    conv2, conv3 and the shortcut) and layer2's first 1x1 reduction, whose output is still at
    1/4 of the frame. Adds: their biases (one per conv but the older taps), conv2's three state
    adds and the block's residual add.
    """
    from glimpse_ros.runtime.export.step import export_step
    from glimpse_ros.runtime.int8 import high_resolution_ops

    backbone = small_backbone("causal")
    assert len(backbone.layer1) == 1
    block = backbone.layer1[0]
    kt = block.conv2.kernel_size[0]
    want = 1 + (1 + kt + 1 + (block.downsample is not None)) + 1
    model = ov.Core().read_model(str(export_step(backbone, tmp_path / "step.onnx", FRAME)))
    names = set(high_resolution_ops(model))
    convs = [op for op in model.get_ops() if op.get_type_name() == "Convolution"]
    adds = [op for op in model.get_ops() if op.get_type_name() == "Add"]
    assert sum(op.get_friendly_name() in names for op in convs) == want < len(convs)
    assert sum(op.get_friendly_name() in names for op in adds) == (want - (kt - 1)) + 3 + 1
    names = {op.get_friendly_name() for op in convs} & names
    width = FRAME[-1]
    for op in convs:  # every other conv is at 1/8 of the frame or coarser
        coarse = width / op.get_output_partial_shape(0)[-1].get_length() >= 8
        assert coarse == (op.get_friendly_name() not in names)


def test_int8_mixed_step_keeps_the_stem_and_layer1_in_bf16(work):
    """int8_mixed: the high-resolution convs unquantised and run in bf16, the rest int8.

    Also close to fp32, cached under its own name (not the all-int8 file).
    """
    from glimpse_ros.runtime import int8 as int8_mod

    for ok, why in (native_int8(), native_bf16()):
        if not ok:
            pytest.skip(why)
    backbone = small_backbone("causal")
    ref = create_step_engine("openvino", backbone, "fp32", threads=1, cache_dir=work,
                             frame_shape=FRAME)
    eng = create_step_engine("openvino", backbone, "int8_mixed", threads=1, cache_dir=work,
                             frame_shape=FRAME)
    assert eng.precision == "int8_mixed" and eng.compiled_precision == "bf16"
    assert eng.onnx_path.name.startswith("int8m-")
    model = ov.Core().read_model(str(eng.onnx_path))
    high = set(int8_mod.high_resolution_ops(model))
    fed_by_fq = {op.get_friendly_name() for op in model.get_ops()
                 if any(i.get_source_output().get_node().get_type_name() == "FakeQuantize"
                        for i in op.inputs())}
    quantised = {op.get_friendly_name() for op in model.get_ops()
                 if op.get_type_name() == "Convolution"
                 and op.input(0).get_source_output().get_node().get_type_name() == "FakeQuantize"}
    convs = {op.get_friendly_name() for op in model.get_ops()
             if op.get_type_name() == "Convolution"}
    # Nothing in the stem and layer1 reads a quantised input (their adds included).
    assert high and not high & fed_by_fq and quantised == convs - high
    _assert_steps_track(ref, eng)
    kernels = eng.kernels()
    assert kernels["convolutions_in_precision"] == kernels["convolutions"]
    # Every quantised convolution runs in int8 (none fell back to bf16), the others in bf16.
    by = kernels["convolution_precisions"]
    assert by.get("u8", 0) + by.get("i8", 0) == len(quantised)
    assert by["bf16"] == kernels["convolutions"] - len(quantised) > 0
