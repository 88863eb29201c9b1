"""Run the exported head step (``export_head``) with ONNX Runtime or OpenVINO, fp32, no torch.

:class:`HeadStepEngine` keeps the head state as numpy arrays between calls (the graph's
``state_out_*`` of one frame are fed back as its ``state_in_*`` on the next, see
:mod:`glimpse_ros.runtime.head_graph`), so a caller only passes each frame's ``(z_t, c_t)``.

Engine settings:

- ONNX Runtime: the CPU session of :func:`~glimpse_ros.runtime.onnxruntime_engine.cpu_session`
  (all graph optimisations, ``threads`` intra-op, sequential), plain ``run``: the outputs come
  back as fresh numpy arrays that become the next state without a copy. I/O binding onto
  preallocated ping-pong state buffers was measured no faster from Python (the ten binding
  calls per frame cost what the saved allocations did), so it is not used.
- OpenVINO: the backbone engines' CPU settings
  (:func:`~glimpse_ros.runtime.openvino_engine.compile_config`: LATENCY hint, ``threads``,
  explicit f32), inputs reshaped to the static shapes of the batch in use (recompiled when the
  batch changes), one infer request. Each frame is copied into the request's input buffers and
  the outputs are copied out of its output buffers (which it reuses); the copies (~0.2 MB of
  state for the paper-size head) cost far less than building the request's tensors per call.

The OpenVINO CPU plugin computes int64 tensors as int32 internally: past 2^31 frames (2.2 years
at 30 fps) the returned ``step`` and ``memory_times`` wrap modulo 2^32. The outputs stay exact,
since the graph only uses the elapsed times ``step - memory_times``, differences taken in the
same modular arithmetic (tested across frame 2^31).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

import numpy as np

from glimpse_ros.runtime import head_graph as hg

LOG = logging.getLogger("glimpse_ros.runtime")
BACKENDS = ("onnxruntime", "openvino")


@dataclass
class HeadStepOutput:
    """Outputs of one frame.

    Attributes:
        logits: ``(B, N)``; glimpses: ``(B, G, 4)``; assignment: ``(B, C, G)``.
    """

    logits: np.ndarray
    glimpses: np.ndarray
    assignment: np.ndarray


class _OrtRunner:
    """An ONNX Runtime CPU session on the head graph."""

    def __init__(self, onnx_path: Path, threads: int) -> None:
        from glimpse_ros.runtime.onnxruntime_engine import _ort_version, cpu_session

        self.session = cpu_session(onnx_path, threads)
        self.dims = {i.name: i.shape for i in self.session.get_inputs()}
        self.version = _ort_version()

    def run(self, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Outputs in :data:`head_graph.OUTPUT_NAMES` order."""
        return self.session.run(hg.OUTPUT_NAMES, feed)


class _OvRunner:
    """An OpenVINO CPU compiled model on the head graph, static shapes for one batch size."""

    def __init__(self, onnx_path: Path, threads: int) -> None:
        from glimpse_ros.runtime.openvino_engine import compile_config, read_model

        self._ov, self.core, self.model = read_model(onnx_path)
        self.config = compile_config(threads, "fp32")
        self.dims = {i.get_any_name(): [d.get_length() if d.is_static else None
                                        for d in i.get_partial_shape()]
                     for i in self.model.inputs}
        self.version = self._ov.__version__
        self.batch: Optional[int] = None

    def compile(self, batch: int) -> None:
        """Reshape every input to its static shape at ``batch`` and compile for the CPU."""
        if batch == self.batch:
            return
        self.model.reshape({name: self._ov.PartialShape([batch, *d[1:]])
                            for name, d in self.dims.items()})
        compiled = self.core.compile_model(self.model, "CPU", self.config)
        self._request = compiled.create_infer_request()
        # numpy views of the request's own input and output buffers (fixed for its lifetime).
        self._inputs = [self._request.get_tensor(name).data for name in hg.INPUT_NAMES]
        self._outputs = [self._request.get_tensor(name).data for name in hg.OUTPUT_NAMES]
        hint = compiled.get_property("INFERENCE_PRECISION_HINT")  # an ov.Type
        self.compiled_precision = (hint.get_type_name() if hasattr(hint, "get_type_name")
                                   else str(hint))
        self.batch = batch

    def run(self, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Outputs in :data:`head_graph.OUTPUT_NAMES` order (copied out of the request).

        The feed is copied into the request's input buffers and ``infer()`` runs without
        arguments: measured 2x less per-call time than ``infer(dict)`` on the small head.
        """
        self.compile(int(feed[hg.Z_T].shape[0]))
        for view, name in zip(self._inputs, hg.INPUT_NAMES):
            np.copyto(view, feed[name])
        self._request.infer()
        return [view.copy() for view in self._outputs]


class HeadStepEngine:
    """The exported head step on a CPU engine, its state kept between calls.

    Args:
        onnx_path: a head step export (:func:`glimpse_ros.runtime.export.head.export_head`).
        backend: ``onnxruntime`` or ``openvino``.
        threads: intra-op threads (>= 1).
        batch: number of streams of the initial (fresh) state.
        precision: ``fp32``, or ``int8`` on OpenVINO: ``onnx_path`` is then the head export
            with int8 weights (:func:`glimpse_ros.runtime.head_int8.head_int8_model`), computed
            in float32 (activations and state stay float32).

    Raises:
        EngineUnavailable: the backend's package is not installed.
        ValueError: unknown backend or precision, bad threads/batch, or the file is not a head
            step export.
    """

    def __init__(self, onnx_path: str | Path, backend: str = "onnxruntime", threads: int = 1,
                 batch: int = 1, precision: str = "fp32") -> None:
        if backend not in BACKENDS:
            raise ValueError(f"head engine backend must be one of {BACKENDS}, got {backend!r}")
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        if precision not in ("fp32", "int8") or (precision == "int8" and backend != "openvino"):
            raise ValueError(f"the exported head runs fp32 on {', '.join(BACKENDS)} and int8 "
                             f"weights on openvino, not {precision} on {backend}")
        self.name = backend
        self.precision = precision
        self.threads = threads
        self.onnx_path = Path(onnx_path)
        self._runner: Any = (_OrtRunner(self.onnx_path, threads) if backend == "onnxruntime"
                             else _OvRunner(self.onnx_path, threads))
        self.dims = hg.graph_dims(self._runner.dims)  # per-row input dims by input name
        self.reset(batch=batch)
        if isinstance(self._runner, _OvRunner):  # compile now, not on the first frame
            self._runner.compile(batch)
        LOG.info("%s %s head step: %s, %d threads, %s", backend, self._runner.version,
                 self.onnx_path.name, threads, precision)

    @property
    def batch_size(self) -> int:
        """Number of streams in the current state."""
        return int(self._state["step"].shape[0])

    @property
    def state(self) -> hg.HeadGraphState:
        """Return a copy of the current head state, field name to numpy array."""
        return {f: a.copy() for f, a in self._state.items()}

    @state.setter
    def state(self, value: hg.HeadGraphState) -> None:
        """Replace the head state with a validated copy of ``value`` (fields, dtypes, shapes)."""
        hg.check_state(value, self.dims)
        self._state = {f: np.ascontiguousarray(value[f]).copy() for f in hg.STATE_FIELDS}

    def reset(self, rows: Optional[Iterable[int]] = None, batch: Optional[int] = None) -> None:
        """Start new sequences: every row (default), the given ``rows``, or a fresh ``batch``."""
        if batch is not None:
            if rows is not None:
                raise ValueError("reset: give rows or batch, not both")
            self._state = hg.fresh_state(self.dims, batch)
            return
        self._state = hg.reset_rows(self._state, rows)

    def step(self, z_t: np.ndarray, c_t: np.ndarray) -> HeadStepOutput:
        """Run one frame and advance the state.

        Args:
            z_t: ``(B, Dz, h, w)`` float32 layer4 features of the frame.
            c_t: ``(B, Dc)`` float32 context vector of the frame.

        Raises:
            ValueError: a shape does not match the export or the state's batch.
        """
        z_t, c_t = hg.check_frame(z_t, c_t, self.dims, self.batch_size)
        outputs = self._runner.run(hg.step_feed(z_t, c_t, self._state))
        logits, glimpses, assignment, self._state = hg.split_outputs(outputs)
        return HeadStepOutput(logits=logits, glimpses=glimpses, assignment=assignment)


__all__ = ["BACKENDS", "HeadStepEngine", "HeadStepOutput"]
