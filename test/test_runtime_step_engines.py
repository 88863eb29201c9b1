"""Step export and step engines of a causal backbone agree with torch (DESIGN §3)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from glimpse_ros.config import ModelConfig
from glimpse_ros.model.backbone import InflatedResNet
from glimpse_ros.model.bn_fold import fold_batchnorm
from glimpse_ros.runtime.engine import EngineUnavailable
from glimpse_ros.runtime.export.clip import compare
from glimpse_ros.runtime.export.step import export_step
from glimpse_ros.runtime.factory import create_step_engine
from runtime_fixtures import random_backbone

# fp32 engines differ from torch only in summation order (~1e-6 relative measured here).
REL_TOL = 1e-4
FRAME = (1, 3, 64, 64)
STEPS = 12


@pytest.fixture(scope="module")
def backbone():
    """Small random causal backbone with non-trivial batch-norm statistics."""
    return random_backbone(ModelConfig.small(temporal_padding="causal"))


@pytest.fixture(scope="module")
def onnx_path(backbone, tmp_path_factory):
    """The step exported once for the module."""
    return export_step(backbone, tmp_path_factory.mktemp("onnx") / "step.onnx", FRAME)


@pytest.fixture(scope="module")
def frames():
    """STEPS random normalised frames, (STEPS, 1, 3, 64, 64)."""
    return np.random.default_rng(0).standard_normal((STEPS,) + FRAME).astype(np.float32)


def test_step_export_has_state_inputs_and_outputs(backbone, onnx_path):
    """Inputs frame, fresh, state_in_i; outputs Z, c, state_out_i; one state per conv2."""
    model = onnx.load(str(onnx_path))
    n = len(backbone.state_shapes(1, 64, 64))
    assert n == 2 * len(backbone.blocks())  # kt - 1 = 2 partial sums per temporal conv
    assert [i.name for i in model.graph.input] == (
        ["frame", "fresh"] + [f"state_in_{i}" for i in range(n)])
    assert [o.name for o in model.graph.output] == (
        ["Z", "c"] + [f"state_out_{i}" for i in range(n)])
    dims = [[d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input[2:]]
    assert [tuple(d[1:]) for d in dims] == [s[1:] for s in backbone.state_shapes(1, 64, 64)]
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17


@pytest.mark.parametrize("name", ["torch", "onnxruntime", "openvino"])
def test_engine_steps_equal_the_clip_forward(name, backbone, onnx_path, frames):
    """Every engine's steps from a fresh state == torch's steps == the causal clip forward."""
    pytest.importorskip(name)
    source = backbone if name == "torch" else onnx_path
    engine = create_step_engine(name, source, threads=1, frame_shape=FRAME)
    reference = create_step_engine("torch", backbone, threads=1)
    # The export folds the batch norms into the convs (step export 5), so its partial sums are
    # the folded convs' (scaled by the norm): its states are compared with a folded copy's.
    states = create_step_engine("torch", backbone if name == "torch"
                                else fold_batchnorm(backbone), threads=1)
    assert engine.name == name and engine.precision == "fp32"
    with torch.no_grad():
        z_clip, c_clip = backbone(torch.from_numpy(frames[:, 0]).permute(1, 0, 2, 3)[None])
    state = ref_state = folded_state = None
    for t, frame in enumerate(frames):
        z, c, state = engine.step(frame, state)
        z_ref, c_ref, ref_state = reference.step(frame, ref_state)
        _, _, folded_state = states.step(frame, folded_state)
        assert z.shape == (1, 256, 2, 2) and c.shape == (1, 128) and z.dtype == np.float32
        for out, ref in ((z, z_ref), (c, c_ref), (z, z_clip[:, :, t].numpy()),
                         (c, c_clip[:, t].numpy())):
            assert compare(ref, out)["relative"] < REL_TOL, (t, compare(ref, out))
        for s, s_ref in zip(state, folded_state):
            assert compare(s_ref, s)["relative"] < REL_TOL


@pytest.mark.parametrize("name", ["onnxruntime", "openvino"])
def test_states_are_values(name, onnx_path, frames):
    """Stepping the same state twice gives the same result; None restarts the sequence."""
    pytest.importorskip(name)
    engine = create_step_engine(name, onnx_path, threads=1, frame_shape=FRAME)
    z0, _, s0 = engine.step(frames[0], None)
    kept = [s.copy() for s in s0]
    z1, _, _ = engine.step(frames[1], s0)
    engine.step(frames[2], None)  # would overwrite s0 if it were an engine buffer
    z1_again, _, _ = engine.step(frames[1], s0)
    assert all(np.array_equal(a, b) for a, b in zip(s0, kept))
    assert np.array_equal(z1, z1_again)
    z0_again, _, _ = engine.step(frames[0], None)
    assert np.array_equal(z0, z0_again) and not np.allclose(z0, z1)


def test_bad_inputs_and_symmetric_models(backbone, onnx_path, frames, tmp_path):
    """Wrong state, wrong frame and symmetric backbones are caller errors."""
    engine = create_step_engine("onnxruntime", onnx_path, threads=1, frame_shape=FRAME)
    _, _, state = engine.step(frames[0], None)
    with pytest.raises(ValueError, match="state"):
        engine.step(frames[1], state[:-1])
    with pytest.raises(ValueError, match="B, 3, H, W"):
        engine.step(frames[0, 0], None)
    with pytest.raises(ValueError, match="state"):
        create_step_engine("torch", backbone, threads=1).step(frames[1], state[1:])
    symmetric = InflatedResNet(ModelConfig.small()).eval()
    with pytest.raises(ValueError, match="causal"):
        export_step(symmetric, tmp_path / "x.onnx", FRAME)
    with pytest.raises(ValueError, match="causal"):
        create_step_engine("torch", symmetric)
    with pytest.raises(ValueError, match="fp16"):
        create_step_engine("onnxruntime", onnx_path, "fp16")


def test_tensorrt_without_gpu_is_a_clear_error(onnx_path):
    """On a machine without tensorrt or a GPU the step engine says what is missing."""
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    with pytest.raises(EngineUnavailable, match="tensorrt"):
        create_step_engine("tensorrt", onnx_path, frame_shape=FRAME)


def test_openvino_held_state_equals_the_explicit_state_engine(onnx_path, frames):
    """The state kept inside OpenVINO gives the explicit-state engine's outputs, restarts too."""
    pytest.importorskip("openvino")
    held = create_step_engine("openvino", onnx_path, threads=1, frame_shape=FRAME,
                              held_state=True)
    explicit = create_step_engine("openvino", onnx_path, threads=1, frame_shape=FRAME)
    assert held.states_are_values is False and not hasattr(explicit, "states_are_values")
    handle = state = None
    for t, frame in enumerate(frames):
        if t in (4, 9):  # restarts mid-stream: both begin a new sequence at this frame
            handle = state = None
        z, c, handle = held.step(frame, handle)
        z_ref, c_ref, state = explicit.step(frame, state)
        # Same arithmetic; with fresh a constant OpenVINO may fuse the adds into the convs in
        # another order (differences ~1e-7 measured), so float tolerance, not bit equality.
        np.testing.assert_allclose(z, z_ref, rtol=1e-5, atol=1e-6, err_msg=str(t))
        np.testing.assert_allclose(c, c_ref, rtol=1e-5, atol=1e-6, err_msg=str(t))
    # The outputs are copies: the next step does not change what an earlier one returned.
    z_kept = z.copy()
    held.step(frames[0], handle)
    assert np.array_equal(z, z_kept)


def test_openvino_held_state_refuses_stale_and_foreign_handles(onnx_path, frames):
    """Only the latest handle continues; an earlier one or another engine's is a caller error."""
    pytest.importorskip("openvino")
    engine = create_step_engine("openvino", onnx_path, threads=1, frame_shape=FRAME,
                                held_state=True)
    other = create_step_engine("openvino", onnx_path, threads=1, frame_shape=FRAME,
                               held_state=True)
    _, _, first = engine.step(frames[0], None)
    _, _, second = engine.step(frames[1], first)
    _, _, foreign = other.step(frames[0], None)
    for bad in (first, foreign, (np.zeros(1, np.float32),)):
        with pytest.raises(ValueError, match="latest"):
            engine.step(frames[2], bad)
    engine.step(frames[2], second)   # the latest one still continues
    with pytest.raises(ValueError, match="B, 3, H, W"):
        engine.step(frames[0, 0], None)
