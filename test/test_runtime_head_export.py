"""The exported head step (ONNX) on ONNX Runtime and OpenVINO against the eager PyTorch head.

The reference is ``GlimpseCloudsHead.step`` run eagerly by torch; the engines run the ONNX graph
with their own kernels, so agreement is between two independent executions. Every frame's
logits, glimpses, assignment and all eight state tensors are compared. The memory holds
``K = 3`` frames and the sequences run for 8, so it fills (frame 3) and then drops whole frames.

Tolerance (fp32): 1e-5 absolute for tensors bounded by about 1 (glimpses, assignment, memory
weights, GRU states, the small model's logits); for unbounded feature-scale tensors
(``z_prev``, ``memory_values``) 1e-5 relative to the tensor's largest magnitude, because float32
rounding grows with the magnitude (a 1e-5 absolute bound on values of ~30 would ask for
better than float32's 1.2e-7 relative precision through several reductions). Integer state
fields must be equal.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest
import torch

from glimpse_ros.config import ModelConfig
from glimpse_ros.model.head import GlimpseCloudsHead, HeadState
from glimpse_ros.runtime import head_graph as hg
from glimpse_ros.runtime.export.head import export_head
from glimpse_ros.runtime.head_engine import HeadStepEngine

# 96 px input: a 3x3 layer4 map; K = 3 frames (9 slots) in memory.
CFG = ModelConfig.small(num_classes=7, crop_size=96, memory_slots=3)
BACKENDS = ["onnxruntime", "openvino"]
MODULES = {"onnxruntime": "onnxruntime", "openvino": "openvino"}


@pytest.fixture(scope="module")
def head() -> GlimpseCloudsHead:
    """A small eval head with a non-identity memory metric and uneven initial assignment."""
    torch.manual_seed(0)
    head = GlimpseCloudsHead(CFG).eval()
    with torch.no_grad():
        head.memory.init_metric(torch.randn(40, CFG.feature_dim).abs())
        head.memory.initial_logits.normal_()
    return head


@pytest.fixture(scope="module")
def onnx_path(head: GlimpseCloudsHead, tmp_path_factory: pytest.TempPathFactory):
    """The head step exported once for the module."""
    return export_head(head, tmp_path_factory.mktemp("head") / "head.onnx")


def _engine(backend: str, path, batch: int = 1) -> HeadStepEngine:
    pytest.importorskip(MODULES[backend])
    return HeadStepEngine(path, backend, threads=1, batch=batch)


def _frames(n: int, batch: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``n`` frames of post-ReLU features ``z (B, Dz, 3, 3)`` and context ``c (B, Dc)``."""
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(batch, CFG.feature_dim, 3, 3, generator=gen).relu() * 3.0,
             torch.randn(batch, CFG.context_dim, generator=gen).relu())
            for _ in range(n)]


def _assert_close(name: str, got: np.ndarray, ref: torch.Tensor, wrap: bool = False) -> None:
    """Compare one engine output with the eager reference (tolerances: module docstring).

    ``wrap``: integers are compared modulo 2^32 (OpenVINO's CPU plugin computes int64 as int32).
    """
    ref_np = ref.detach().numpy()
    assert got.shape == ref_np.shape, name
    if not np.issubdtype(ref_np.dtype, np.floating):
        assert got.dtype == np.int64, name
        mask = 0xFFFFFFFF if wrap else -1
        np.testing.assert_array_equal(got & mask, ref_np & mask, err_msg=name)
        return
    scale = max(1.0, float(np.abs(ref_np).max())) if name in ("z_prev", "memory_values") else 1.0
    err = float(np.abs(got.astype(np.float64) - ref_np).max())
    assert err <= 1e-5 * scale, f"{name}: max |diff| {err:.3g} > {1e-5 * scale:.3g}"


def _step_both(head: GlimpseCloudsHead, engine: HeadStepEngine, state: HeadState,
               z: torch.Tensor, c: torch.Tensor, wrap: bool = False) -> HeadState:
    """One frame on both; compare every output and state tensor; return the eager state."""
    with torch.no_grad():
        state, out = head.step(state, z, c)
    got = engine.step(z.numpy(), c.numpy())
    _assert_close("logits", got.logits, out.logits)
    _assert_close("glimpses", got.glimpses, out.glimpses)
    _assert_close("assignment", got.assignment, out.assignment)
    new = engine.state
    for field in hg.STATE_FIELDS:
        _assert_close(field, new[field], getattr(state, field), wrap)
    return state


def _cat(a: HeadState, b: HeadState) -> HeadState:
    """Two states stacked on the batch axis."""
    return HeadState(**{f: torch.cat([getattr(a, f), getattr(b, f)])
                        for f in hg.STATE_FIELDS})


@pytest.mark.parametrize("backend", BACKENDS)
def test_engine_matches_eager_head_past_a_full_memory_and_across_reset(
        head: GlimpseCloudsHead, onnx_path, backend: str) -> None:
    """8 frames (memory full from frame 3, then dropping frames), reset, 5 more: all agree."""
    engine = _engine(backend, onnx_path)
    state = head.initial_state(1)
    for z, c in _frames(8, 1, seed=1):
        state = _step_both(head, engine, state, z, c)
    slots = head.memory.slots
    # The run covered the full memory that drops whole frames: slots hold frames 5, 6, 7.
    assert int(state.memory_fill[0]) == slots
    assert state.memory_times[0].tolist() == [t for t in (5, 6, 7) for _ in range(3)]
    engine.reset()
    state = head.initial_state(1)
    for z, c in _frames(5, 1, seed=2):
        state = _step_both(head, engine, state, z, c)
    assert int(state.step[0]) == 5


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_rows_at_different_steps_and_a_row_reset(head: GlimpseCloudsHead, onnx_path,
                                                       backend: str) -> None:
    """Batch 2, row 0 four frames ahead of row 1; later row 1 alone is reset."""
    ahead = head.initial_state(1)
    with torch.no_grad():
        for z, c in _frames(4, 1, seed=3):
            ahead, _ = head.step(ahead, z, c)
    state = _cat(ahead, head.initial_state(1))
    engine = _engine(backend, onnx_path, batch=2)
    engine.state = {f: getattr(state, f).numpy() for f in hg.STATE_FIELDS}
    frames = _frames(7, 2, seed=4)
    for z, c in frames[:4]:
        state = _step_both(head, engine, state, z, c)
    assert state.step.tolist() == [8, 4] and state.memory_fill.tolist() == [9, 9]
    engine.reset(rows=[1])
    one = HeadState(**{f: getattr(state, f)[:1] for f in hg.STATE_FIELDS})
    state = _cat(one, head.initial_state(1))
    for z, c in frames[4:]:
        state = _step_both(head, engine, state, z, c)
    assert state.step.tolist() == [11, 3] and state.memory_fill.tolist() == [9, 9]


@pytest.mark.parametrize("backend", BACKENDS)
def test_frame_counter_past_2_to_the_31(head: GlimpseCloudsHead, onnx_path,
                                        backend: str) -> None:
    """An endless stream: steps across frame 2^31 agree with the int64 eager head.

    OpenVINO's CPU plugin computes int64 as int32, so its counters wrap modulo 2^32; the elapsed
    times ``step - memory_times`` are differences in that same modular arithmetic and stay exact.
    """
    state = head.initial_state(1)
    with torch.no_grad():
        for z, c in _frames(5, 1, seed=6):
            state, _ = head.step(state, z, c)
    offset = 2**31 - 7  # frame 5 becomes 2^31 - 2: the next steps cross 2^31
    state = dataclasses.replace(state, step=state.step + offset,
                                memory_times=state.memory_times + offset)
    engine = _engine(backend, onnx_path)
    engine.state = {f: getattr(state, f).numpy() for f in hg.STATE_FIELDS}
    for z, c in _frames(4, 1, seed=7):
        state = _step_both(head, engine, state, z, c, wrap=backend == "openvino")
    assert int(state.step[0]) == 2**31 + 2


def test_graph_contract(head: GlimpseCloudsHead, onnx_path) -> None:
    """Names, dtypes and static per-row shapes as head_graph states; no control flow nodes."""
    assert tuple(f.name for f in dataclasses.fields(HeadState)) == hg.STATE_FIELDS
    model = onnx.load(str(onnx_path))
    assert [i.name for i in model.graph.input] == hg.INPUT_NAMES
    assert [o.name for o in model.graph.output] == hg.OUTPUT_NAMES
    # The fill-level logic is masks, not branches: no If/Loop in the graph.
    assert not {n.op_type for n in model.graph.node} & {"If", "Loop", "Scan"}
    shapes = {v.name: [d.dim_value or d.dim_param for d in v.type.tensor_type.shape.dim]
              for v in list(model.graph.input) + list(model.graph.output)}
    dims = hg.graph_dims({n: shapes[n] for n in hg.INPUT_NAMES})
    fresh = hg.fresh_state(dims, 2)
    init = head.initial_state(2)
    for f in hg.STATE_FIELDS:
        assert shapes[hg.state_output_name(f)] == shapes[hg.state_input_name(f)] == \
            ["B", *getattr(init, f).shape[1:]], f
        np.testing.assert_array_equal(fresh[f], getattr(init, f).numpy())
        assert fresh[f].dtype == getattr(init, f).numpy().dtype, f


def test_bad_frames_and_states_are_rejected(onnx_path) -> None:
    """Wrong shapes, batch or state dtype raise ValueError naming the input."""
    engine = _engine("onnxruntime", onnx_path)
    z, c = (t.numpy() for t in _frames(1, 1, seed=5)[0])
    with pytest.raises(ValueError, match="z_t"):
        engine.step(z[:, :, :2], c)
    with pytest.raises(ValueError, match="c_t"):
        engine.step(z, np.concatenate([c, c]))
    bad = engine.state
    bad["step"] = bad["step"].astype(np.float32)
    with pytest.raises(ValueError, match="step"):
        engine.state = bad
    with pytest.raises(ValueError, match="backend"):
        HeadStepEngine(onnx_path, "torch")


def test_unexportable_heads_are_refused(tmp_path) -> None:
    """The random-glimpse ablation and the int8 head cannot be exported."""
    from glimpse_ros.model.quantize import quantize_head, quantized_engine_available

    random = GlimpseCloudsHead(dataclasses.replace(CFG, glimpse_locations="random"))
    with pytest.raises(ValueError, match="random"):
        export_head(random, tmp_path / "r.onnx")
    if quantized_engine_available():
        with pytest.raises(ValueError, match="quantised"):
            export_head(quantize_head(GlimpseCloudsHead(CFG).eval()), tmp_path / "q.onnx")
    assert not list(tmp_path.iterdir())


def test_bench_rows_of_the_exported_head(head: GlimpseCloudsHead) -> None:
    """The benchmark's exported-head rows: one per installed engine, deviation within 1e-5."""
    from glimpse_ros.bench.head import bench_exported_head, format_exported_head

    rows = bench_exported_head(head, CFG, runs=1)
    engines = [b for b in BACKENDS if b in rows]
    assert "torch_eager" in rows and engines
    for b in engines:
        assert rows[b]["speedup_vs_eager"] > 0 and len(rows[b]["times_ms"]) == 1
        assert max(rows[b]["max_abs_diff_vs_eager"].values()) <= 1e-5, b
    if "openvino_int8" in rows:  # int8 weights: close to fp32, not equal
        assert 0 < max(rows["openvino_int8"]["max_abs_diff_vs_eager"].values()) < 0.1
        engines.append("openvino_int8")
    lines = format_exported_head({"model": "small", "head_step_exported": rows})
    assert len(lines) == 3 + len(engines) and all(b in "".join(lines) for b in engines)


_NO_TORCH = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this process")
sys.meta_path.insert(0, Block())
import numpy as np
from glimpse_ros.runtime.head_engine import HeadStepEngine
engine = HeadStepEngine(sys.argv[1], sys.argv[2])
z = np.ones((1, *engine.dims["z_t"]), np.float32)
c = np.ones((1, *engine.dims["c_t"]), np.float32)
for _ in range(4):
    out = engine.step(z, c)
print(int(engine.state["step"][0]), out.logits.shape)
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_engine_runs_without_torch(onnx_path, backend: str) -> None:
    """In a process where importing torch fails, the engine loads the export and steps it."""
    import subprocess
    import sys

    pytest.importorskip(MODULES[backend])
    run = subprocess.run([sys.executable, "-c", _NO_TORCH, str(onnx_path), backend],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split()[0] == "4" and f"{CFG.num_classes})" in run.stdout
