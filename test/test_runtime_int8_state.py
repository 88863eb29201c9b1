"""int8 step: the partial sums of the temporal convs stay in float, the convolutions do not."""

from __future__ import annotations

import pytest

from glimpse_ros.config import ModelConfig
from glimpse_ros.runtime.export.step import export_step
from runtime_fixtures import random_backbone

ov = pytest.importorskip("openvino")
pytest.importorskip("nncf")


def _sources(op) -> set[str]:
    return {i.get_source_output().get_node().get_type_name() for i in op.inputs()}


def _is_bias(op) -> bool:
    """A convolution's bias add: a Convolution plus a constant (reshaped on import)."""
    kinds = _sources(op)
    return "Convolution" in kinds and bool(kinds & {"Constant", "Reshape"})


def test_state_arithmetic_is_left_in_float(tmp_path):
    """state_ops names every add of the partial sums and no residual add; NNCF obeys it."""
    from glimpse_ros.runtime.int8 import quantize, state_ops

    cfg = ModelConfig.small(temporal_padding="causal", crop_size=64, resize_size=72)
    backbone = random_backbone(cfg).eval()
    path = export_step(backbone, tmp_path / "step.onnx", (1, 3, 64, 64))
    model = ov.Core().read_model(str(path))
    names = set(state_ops(model))
    adds = [op for op in model.get_ops() if op.get_type_name() == "Add"]
    biases = [op for op in adds if _is_bias(op)]
    residual = [op for op in adds if op.get_friendly_name() not in names and op not in biases]
    # One residual add per block; each temporal conv (kt = 3) adds its output (tap 0 + S_1), its
    # new S_1 (tap 1 + S_2) and the replicated fill of S_1 (tap 1 + tap 2): three state adds.
    # Every conv carries its folded batch norm's bias (temporal convs on the newest tap only):
    # the stem, three per block and each block's shortcut conv.
    blocks = backbone.blocks()
    convs = 1 + 3 * len(blocks) + sum(b.downsample is not None for b in blocks)
    assert len(residual) == len(blocks) and len(biases) == convs
    assert len(adds) == len(blocks) + 3 * len(blocks) + convs
    assert all(not _sources(op) & {"Select", "Parameter"} for op in residual)
    # The graph carries no split or concatenation of the state (step export 4) and no batch
    # norm (step export 5: folded into the convs). The importer's shape arithmetic for the conv
    # biases (integer Concat of ShapeOf) folds away with static shapes; only data ops count.
    kinds = {op.get_type_name() for op in model.get_ops()
             if op.get_output_element_type(0).is_real()}
    assert not kinds & {"Split", "VariadicSplit", "Concat", "BatchNormInference"}
    int8 = ov.Core().read_model(str(quantize(path, (1, 3, 64, 64), tmp_path / "q.xml",
                                             clips=2)))
    fed_by_fq = {op.get_friendly_name() for op in int8.get_ops()
                 if "FakeQuantize" in _sources(op)}
    assert not fed_by_fq & names
    # The convolutions' activations are quantised (NNCF's FakeQuantize right before them).
    quantised_convs = {t.get_node().get_friendly_name() for op in int8.get_ops()
                       if op.get_type_name() == "FakeQuantize"
                       for t in op.output(0).get_target_inputs()
                       if t.get_node().get_type_name() == "Convolution"}
    assert len(quantised_convs) >= 3 * len(blocks)
    # Only conv inputs (and the residual adds' inputs) are rounded: no quantiser on a conv's own
    # output before its batch norm, as NNCF placed with the norms left unfolded (export 4).
    assert all(op.input(0).get_source_output().get_node().get_type_name()
               in ("Relu", "Add", "Parameter", "MaxPool")
               for op in int8.get_ops() if op.get_type_name() == "FakeQuantize")


def test_int8_step_compiles_with_held_state_and_agrees(tmp_path):
    """The int8 step with its state held in OpenVINO compiles and follows the explicit engine.

    Step export 4 feeds a state output straight from a convolution; with OpenVINO's own
    make-stateful transformation the CPU plugin refused to compile that int8 graph
    (``make_stateful`` gives every ``ReadValue`` an initial value). The two engines run the same
    int8 graph, with ``fresh`` fixed or fed: float rounding may flip a quantisation step, so the
    bound is a small fraction of the features' range, over a restart too.
    """
    import numpy as np

    from glimpse_ros.runtime.factory import create_step_engine

    cfg = ModelConfig.small(temporal_padding="causal", crop_size=64, resize_size=72)
    path = export_step(random_backbone(cfg).eval(), tmp_path / "step.onnx", (1, 3, 64, 64))
    kw = dict(precision="int8", threads=1, cache_dir=tmp_path, frame_shape=(1, 3, 64, 64))
    held = create_step_engine("openvino", path, held_state=True, **kw)
    explicit = create_step_engine("openvino", path, **kw)
    frames = np.random.default_rng(1).standard_normal((8, 1, 3, 64, 64)).astype(np.float32)
    handle = state = None
    for t, frame in enumerate(frames):
        if t == 5:
            handle = state = None
        z, _, handle = held.step(frame, handle)
        z_ref, _, state = explicit.step(frame, state)
        scale = float(np.abs(z_ref).max())
        assert scale > 0 and float(np.abs(z - z_ref).max()) <= 0.02 * scale, t


def test_state_ops_of_a_split_state_graph():
    """A step export 3 graph (bundles may carry one) split its state: those adds stay float."""
    import numpy as np
    import openvino.opset13 as ops

    from glimpse_ros.runtime.int8 import state_ops

    x = ops.parameter([1, 4, 3, 3], np.float32, name="frame")
    state = ops.parameter([1, 8, 3, 3], np.float32, name="state_in_0")
    state.output(0).set_names({"state_in_0"})
    parts = ops.variadic_split(state, ops.constant(np.int64(1)), ops.constant(np.array([4, 4])))
    summed = ops.add(x, parts.output(0), name="state_add")
    residual = ops.add(x, x, name="residual_add")
    model = ov.Model([ops.result(summed), ops.result(residual)], [x, state])
    assert state_ops(model) == ["state_add"]
