"""TensorRT GPU engine for the causal backbone's step export (DESIGN §3, streaming backbone).

Same build, cache and precision rules as :mod:`glimpse_ros.runtime.tensorrt_engine` (lazy
``tensorrt`` import, CUDA memory from torch, one static optimisation profile, engines cached by
ONNX hash + TensorRT version + GPU + precision + frame shape). The state travels as explicit graph
inputs/outputs (numpy arrays on the host), see :mod:`glimpse_ros.runtime.engine`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from glimpse_ros.runtime.step_graph import (FRAME, FRESH, graph_state_shapes, state_input_names,
                                            state_output_names, step_inputs)
from glimpse_ros.runtime.model_files import file_sha256
from glimpse_ros.runtime.engine import check_frame_input
from glimpse_ros.runtime.tensorrt_engine import build_serialized, current_target, import_tensorrt
from glimpse_ros.runtime.trt_cache import EngineCache, engine_key

LOG = logging.getLogger("glimpse_ros.runtime")


def onnx_state_dims(onnx_path: Path) -> list[list[object]]:
    """Dims of the step export's state inputs (``None`` for a dynamic axis)."""
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    names = [i.name for i in graph.input]
    n = len(names) - 2
    if names != [FRAME, FRESH] + state_input_names(n):
        raise ValueError(f"{onnx_path}: not a step export (inputs {names[:3]}...)")
    return [[d.dim_value if d.HasField("dim_value") else None
             for d in i.type.tensor_type.shape.dim] for i in graph.input[2:]]


class TensorRTStepEngine:
    """Run the step export with TensorRT on the current CUDA device (fp16 by default)."""

    name = "tensorrt"

    def __init__(self, onnx_path: str | Path, precision: str = "fp16",
                 cache_dir: str | Path | None = None,
                 frame_shape: tuple[int, ...] | None = None) -> None:
        """Prepare the engine now when ``frame_shape`` is given, else on the first call."""
        self._trt = import_tensorrt()
        if precision not in ("fp16", "fp32"):
            raise ValueError(f"precision must be fp16 or fp32, got {precision!r}")
        self.onnx_path = Path(onnx_path)
        self.onnx_sha256 = file_sha256(self.onnx_path)
        self._state_dims = onnx_state_dims(self.onnx_path)
        self.precision = precision
        self.cache = EngineCache(cache_dir)
        self.runtime = self._trt.Runtime(self._trt.Logger(self._trt.Logger.WARNING))
        self.shape: tuple[int, ...] | None = None
        self.decision = ""
        if frame_shape is not None:
            self._prepare(tuple(frame_shape))

    def _prepare(self, shape: tuple[int, ...]) -> None:
        """Load or build the engine for frames of ``shape`` and allocate its CUDA buffers."""
        import torch

        trt = self._trt
        self._shapes = graph_state_shapes(self._state_dims, shape[0])
        n = len(self._shapes)
        inputs = dict(zip([FRAME, FRESH] + state_input_names(n),
                          [tuple(shape), (shape[0],)] + self._shapes))
        target = current_target(trt, self.precision, shape)
        key = engine_key(self.onnx_sha256, target)
        info = {"onnx": str(self.onnx_path), "onnx_sha256": self.onnx_sha256, "graph": "step",
                **target.__dict__}
        result = self.cache.load_or_build(
            key, self.runtime.deserialize_cuda_engine,
            lambda: build_serialized(trt, self.onnx_path, self.precision, shape, inputs), info)
        self.decision = result.decision
        self.engine = result.engine
        self.context = self.engine.create_execution_context()
        dev = torch.device("cuda")
        self._in = {}
        for name, s in inputs.items():
            self.context.set_input_shape(name, s)
            self._in[name] = torch.empty(s, dtype=torch.float32, device=dev)
        self._out_names = ["Z", "c"] + state_output_names(n)
        self._out = {name: torch.empty(tuple(self.context.get_tensor_shape(name)),
                                       dtype=torch.float32, device=dev)
                     for name in self._out_names}
        for name, t in {**self._in, **self._out}.items():
            self.context.set_tensor_address(name, t.data_ptr())
        self.stream = torch.cuda.Stream()
        self.shape = shape
        LOG.info("TensorRT step engine ready (%s, %s, %s, %d state tensors)", result.decision,
                 self.precision, shape, n)

    def step(self, frame: np.ndarray, state: tuple[np.ndarray, ...] | None
             ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
        """Run one frame: ``(B, 3, H, W)`` float32 and the state -> ``(z, c, new_state)``."""
        import torch

        frame = check_frame_input(frame)
        if frame.shape != self.shape:
            self._prepare(frame.shape)
        feed = step_inputs(frame, state, self._shapes)
        with torch.cuda.stream(self.stream):
            for name, value in feed.items():
                self._in[name].copy_(torch.from_numpy(value))
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise RuntimeError("TensorRT step execution failed")
            out = [self._out[name].cpu().numpy() for name in self._out_names]  # synchronises
        return out[0], out[1], tuple(out[2:])


__all__ = ["TensorRTStepEngine", "onnx_state_dims"]
