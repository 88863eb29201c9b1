"""OpenVINO step engine that keeps the backbone's state inside the compiled model.

The step export (:mod:`glimpse_ros.runtime.export.step`) passes each temporal conv's state in
and out as graph tensors: 16 tensors for ResNet-50 (11 MB at 224² as partial sums, 15 MB as the
input frames of export v2). Fed from numpy and copied back out every frame they made the bf16
step (5D step graph of export v2) 1.35x its clip / T on one Zen 4 thread (clip / 8 82 ms, step
110 ms). OpenVINO's
make-stateful transformation turns each ``state_in_i`` / ``state_out_i`` pair into a variable
(``ReadValue`` / ``Assign``) that lives in the infer request: nothing crosses the API but the
frame and ``Z``, ``c`` (same run: 91 ms, 1.11x; results bit-identical to the explicit-state
graph). docs/measurements.md has the numbers with the 4D step graph of export v3.

The price is the state contract. Explicit-state engines return states that are values
(:mod:`glimpse_ros.runtime.engine`); here the state is the request's, and :meth:`step` returns a
:class:`HeldState` handle to it. Only the latest handle continues a sequence; ``None`` starts a
new one (the graph's ``fresh`` input makes the convs ignore the stored frames, exactly as the
explicit graph ignores its state inputs). That is all the Recognizer needs: it steps one stream
forward and restarts it with ``None``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from glimpse_ros.runtime.engine import check_frame_input
from glimpse_ros.runtime.openvino_engine import _OpenVinoBase

LOG = logging.getLogger("glimpse_ros.runtime")


@dataclass(frozen=True)
class HeldState:
    """Handle to the state an :class:`OpenVinoHeldStateStepEngine` holds after a step.

    Attributes:
        engine: ``id`` of the engine that issued it.
        step: how many frames that engine had stepped when it issued it.
    """

    engine: int
    step: int


class OpenVinoHeldStateStepEngine(_OpenVinoBase):
    """Run the step export with its state held in the OpenVINO request (module docstring)."""

    states_are_values = False

    def __init__(self, onnx_path: str | Path, threads: int = 1,
                 frame_shape: tuple[int, ...] | None = None, precision: str = "fp32") -> None:
        """Read ``onnx_path`` (a step export or its int8 IR); compile now or on the first frame."""
        from glimpse_ros.runtime.step_graph import FRAME, FRESH, state_input_names

        self._read(onnx_path, threads, precision)
        names = [i.get_any_name() for i in self.model.inputs]
        self._n = len(names) - 2
        if names != [FRAME, FRESH] + state_input_names(self._n):
            raise ValueError(f"{onnx_path}: not a step export (inputs {names[:3]}...)")
        self._state_dims = [[d.get_length() if d.is_static else None
                             for d in i.get_partial_shape()] for i in self.model.inputs[2:]]
        self._steps = 0
        if frame_shape is not None:
            self._compile(tuple(frame_shape))

    def _compile(self, shape: tuple[int, ...]) -> None:
        """Static shapes for a ``shape`` frame, state pairs made variables, compile."""
        from openvino._offline_transformations import apply_make_stateful_transformation

        from glimpse_ros.runtime.step_graph import (graph_state_shapes, state_input_names,
                                                    state_output_names)

        if self.shape is not None:
            LOG.info("openvino held-state step: frame shape changed %s -> %s, recompiling",
                     self.shape, shape)
        shapes = graph_state_shapes(self._state_dims, shape[0])
        model = self.model.clone()  # the transformation rewrites the graph it is given
        model.reshape({port: self._ov.PartialShape(list(s)) for port, s in
                       zip(model.inputs, [list(shape), [shape[0]]] + [list(s) for s in shapes])})
        apply_make_stateful_transformation(
            model, dict(zip(state_input_names(self._n), state_output_names(self._n))))
        self._compiled = self.core.compile_model(model, "CPU", self.config)
        self._request = self._compiled.create_infer_request()
        self._frame = self._request.get_tensor("frame").data      # the request's own buffers
        self._fresh = self._request.get_tensor("fresh").data
        self._z = self._request.get_tensor("Z").data
        self._c = self._request.get_tensor("c").data
        self._latest: HeldState | None = None
        self.shape = shape
        LOG.info("openvino %s step: compiled %s for %s, %d state tensors held in the request, "
                 "%d threads, LATENCY hint, %s", self._ov.__version__, self.onnx_path.name,
                 shape, self._n, self.threads, self.precision)

    def step(self, frame: np.ndarray, state: HeldState | None
             ) -> tuple[np.ndarray, np.ndarray, HeldState]:
        """Run one frame: ``(B, 3, H, W)`` float32 and the handle -> ``(z, c, new handle)``.

        Raises:
            ValueError: a bad frame, or a handle other than the latest one this engine issued
                (an earlier state is gone: only ``None``, a restart, is possible then).
        """
        frame = check_frame_input(frame)
        if state is not None and (not isinstance(state, HeldState) or state != self._latest):
            raise ValueError("state: this engine holds its state (openvino, held state); only "
                             "the handle of its latest step continues a sequence, None restarts")
        if frame.shape != self.shape:
            if state is not None:
                raise ValueError(f"state: the frame shape changed {self.shape} -> "
                                 f"{frame.shape}; restart the sequence with None")
            self._compile(frame.shape)
        np.copyto(self._frame, frame)
        self._fresh[...] = 1.0 if state is None else 0.0
        self._request.infer()
        self._steps += 1
        self._latest = HeldState(id(self), self._steps)
        return self._z.copy(), self._c.copy(), self._latest


__all__ = ["HeldState", "OpenVinoHeldStateStepEngine"]
