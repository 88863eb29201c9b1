"""OpenVINO step engine that keeps the backbone's state inside the compiled model.

The step export (:mod:`glimpse_ros.runtime.export.step`) passes the temporal convs' state in and
out as graph tensors: 32 partial sums for ResNet-50 (11 MB at 224²; 15 MB of input frames in
export v2). Fed from numpy and copied back out every frame they made the bf16 step (5D step
graph of export v2) 1.35x its clip / T on one Zen 4 thread (clip / 8 82 ms, step 110 ms).
OpenVINO variables (:func:`make_stateful`) turn each ``state_in_i`` / ``state_out_i`` pair into
a ``ReadValue`` / ``Assign`` pair that lives in the infer request: nothing crosses the API but the
frame and ``Z``, ``c`` (same run: 91 ms, 1.11x). docs/measurements.md has the later numbers.

The graph's ``fresh`` input is fixed in two compiled copies instead of fed every frame. With
``fresh`` an input, every frame computes each conv's sequence-start state (the replicated first
frame's partial sums: a concatenation of tap sums) and selects between it and the stored one; with
``fresh`` a constant both fold away. The *continuing* copy (``fresh = 0``) holds the state as
variables; the *starting* copy (``fresh = 1``, state inputs ignored) runs a sequence's first frame
and its state outputs are loaded into the continuing copy's variables. Profiled on the int8
ResNet-50 step at 224² (2 Zen 4 threads, OpenVINO per-layer counters): 26.3 -> 25.0 ms per
frame, 16 of the 32 concatenations and 16 reorders gone. The cost is a second compiled copy of the
weights (int8 ResNet-50: 46 MB). With ``fresh`` a constant the plugin may fuse the state adds
into the convolutions in another order: outputs agree with the explicit-state graph to float
rounding (~1e-7), no longer bit for bit.

The price is the state contract. Explicit-state engines return states that are values
(:mod:`glimpse_ros.runtime.engine`); here the state is the request's, and :meth:`step` returns a
:class:`HeldState` handle to it. Only the latest handle continues a sequence; ``None`` starts a
new one (through the starting copy, exactly as the explicit graph ignores its state inputs with
``fresh = 1``). That is all the Recognizer needs: it steps one stream forward and restarts it
with ``None``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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

    def _fixed(self, shape: tuple[int, ...], fresh: float) -> Any:
        """Return a copy of the graph, static shapes for a ``shape`` frame, ``fresh`` constant."""
        from openvino import op

        from glimpse_ros.runtime.step_graph import graph_state_shapes

        shapes = graph_state_shapes(self._state_dims, shape[0])
        model = self.model.clone()  # the caller's transformations rewrite the graph they get
        model.reshape({port: self._ov.PartialShape(list(s)) for port, s in
                       zip(model.inputs, [list(shape), [shape[0]]] + [list(s) for s in shapes])})
        parameter = model.inputs[1].get_node()  # fresh (checked in __init__)
        constant = op.Constant(np.full([shape[0]], fresh, np.float32))
        for target in list(parameter.output(0).get_target_inputs()):
            target.replace_source_output(constant.output(0))
        model.remove_parameter(parameter)
        return model

    def _compile(self, shape: tuple[int, ...]) -> None:
        """Static shapes for a ``shape`` frame; compile the starting and continuing copies."""
        from glimpse_ros.runtime.step_graph import state_input_names, state_output_names

        if self.shape is not None:
            LOG.info("openvino held-state step: frame shape changed %s -> %s, recompiling",
                     self.shape, shape)
        start = self.core.compile_model(self._fixed(shape, 1.0), "CPU", self.config)
        self._start = start.create_infer_request()
        for port in start.inputs[1:]:  # state inputs, ignored with fresh = 1: zeros, no garbage
            self._start.get_tensor(port).data[...] = 0.0
        model = self._fixed(shape, 0.0)
        make_stateful(model, dict(zip(state_input_names(self._n), state_output_names(self._n))))
        self._compiled = self.core.compile_model(model, "CPU", self.config)
        self._request = self._compiled.create_infer_request()
        # The variables in state order, and the starting copy's state outputs that fill them.
        variables = {v.name: v for v in self._request.query_state()}
        self._variables = [_variable(variables, i, o) for i, o in
                           zip(state_input_names(self._n), state_output_names(self._n))]
        self._start_states = [self._start.get_tensor(name)
                              for name in state_output_names(self._n)]
        self._frames = {req: req.get_tensor("frame").data  # the requests' own buffers
                        for req in (self._start, self._request)}
        self._outputs = {req: (req.get_tensor("Z").data, req.get_tensor("c").data)
                         for req in (self._start, self._request)}
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
        request = self._start if state is None else self._request
        np.copyto(self._frames[request], frame)
        request.infer()
        if state is None:  # the new sequence's state goes into the continuing copy
            for variable, tensor in zip(self._variables, self._start_states):
                variable.state = tensor
        self._steps += 1
        self._latest = HeldState(id(self), self._steps)
        z, c = self._outputs[request]
        return z.copy(), c.copy(), self._latest


def make_stateful(model: Any, pairs: dict[str, str]) -> None:
    """Turn each ``state_in`` parameter / ``state_out`` result pair of ``model`` into a variable.

    What OpenVINO's make-stateful transformation does, except that each ``ReadValue`` gets a
    zero constant as its initial value. Without one, the CPU plugin's low-precision pass
    (``AssignAndReadValueTransformation``) fails to compile an int8 step whose state output is a
    convolution's (the newest tap's partial sum in step export 4: "index '0' out of range").
    With it the plugin also writes each new state straight into its variable: the ``Assign``
    copies (3.3-4.3 ms of a 25-27 ms int8 ResNet-50 frame with export 3, 2 Zen 4 threads) are
    gone from the per-layer counters.

    Args:
        model: an ``openvino.Model`` with static state shapes; changed in place.
        pairs: ``{state input name: state output name}``. The variable of a pair is named
            ``input + output``.
    """
    import openvino.opset6 as ops
    from openvino import op

    params = {p.output(0).get_any_name(): p for p in model.get_parameters()}
    results = {r.input(0).get_source_output().get_any_name(): r for r in model.get_results()}
    for name_in, name_out in pairs.items():
        param, result = params[name_in], results[name_out]
        source = result.input(0).get_source_output()
        if source.get_index() != 0:  # Assign takes a node: its first output
            raise ValueError(f"{name_out}: output {source.get_index()} of its node; "
                             "make_stateful needs a node's first output")
        info = op.util.VariableInfo()
        info.data_shape = param.get_output_partial_shape(0)
        info.data_type = param.get_output_element_type(0)
        info.variable_id = name_in + name_out
        variable = op.util.Variable(info)
        # A scalar zero broadcast to the state's shape: no state-sized constant in the graph.
        zero = op.Constant(np.zeros((), info.data_type.to_dtype()))
        shape = op.Constant(np.array(info.data_shape.to_shape(), np.int64))
        read = ops.read_value(ops.broadcast(zero, shape), variable)
        for target in list(param.output(0).get_target_inputs()):
            target.replace_source_output(read.output(0))
        assign = ops.assign(source.get_node(), variable)
        model.remove_result(result)
        model.remove_parameter(param)
        model.add_sinks([assign])
    model.validate_nodes_and_infer_types()


def _variable(variables: dict[str, Any], state_input: str, state_output: str) -> Any:
    """The variable :func:`make_stateful` made of a state pair (named ``in`` + ``out``)."""
    name = state_input + state_output
    if name not in variables:
        raise RuntimeError(f"openvino held-state step: no variable {name!r} for the state pair "
                           f"(variables: {', '.join(sorted(variables)[:4])}...)")
    return variables[name]


__all__ = ["HeldState", "OpenVinoHeldStateStepEngine", "make_stateful"]
