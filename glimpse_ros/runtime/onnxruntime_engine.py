"""ONNX Runtime CPU engine for the exported backbone."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from glimpse_ros.runtime.engine import EngineUnavailable, check_clip

LOG = logging.getLogger("glimpse_ros.runtime")


def _ort_version() -> str:
    """The installed onnxruntime version (for the log lines)."""
    import onnxruntime as ort

    return ort.__version__


def cpu_session(onnx_path: str | Path, threads: int) -> Any:
    """An ``onnxruntime.InferenceSession`` on the CPU provider with the settings below.

    Graph optimisations are all enabled; ``threads`` sets the intra-op pool size (inter-op = 1,
    the backbone is a chain of convolutions with nothing to run in parallel).
    """
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise EngineUnavailable("onnxruntime is not installed "
                                "(pip install onnxruntime)") from err
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(onnx_path), sess_options=opts,
                                providers=["CPUExecutionProvider"])


class OnnxRuntimeEngine:
    """Run the backbone ONNX file with ONNX Runtime on the CPU (settings: :func:`cpu_session`)."""

    name = "onnxruntime"

    def __init__(self, onnx_path: str | Path, threads: int = 1) -> None:
        """Load ``onnx_path`` into an inference session."""
        self.precision = "fp32"
        self.session = cpu_session(onnx_path, threads)
        self.input_name = self.session.get_inputs()[0].name
        outputs = [o.name for o in self.session.get_outputs()]
        if outputs[:2] != ["Z", "c"]:
            raise ValueError(f"{onnx_path}: expected outputs ['Z', 'c'], got {outputs}")
        LOG.info("onnxruntime %s: %s, %d threads", _ort_version(), onnx_path, threads)

    def run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run the backbone: ``x (B, 3, T, H, W) float32 -> (Z, c)`` float32 numpy arrays."""
        z, c = self.session.run(["Z", "c"], {self.input_name: check_clip(x)})
        return z, c


class OnnxRuntimeStepEngine:
    """Run the causal backbone's step export (``export_step``) with ONNX Runtime on the CPU.

    The state travels as explicit graph inputs/outputs (numpy arrays), see
    :mod:`glimpse_ros.runtime.engine`.
    """

    name = "onnxruntime"

    def __init__(self, onnx_path: str | Path, threads: int = 1) -> None:
        """Load ``onnx_path`` (a step export) into an inference session."""
        from glimpse_ros.runtime.step_graph import (FRAME, FRESH, state_input_names,
                                                    state_output_names)

        self.precision = "fp32"
        self.session = cpu_session(onnx_path, threads)
        inputs = self.session.get_inputs()
        n = len(inputs) - 2
        if [i.name for i in inputs] != [FRAME, FRESH] + state_input_names(n):
            raise ValueError(f"{onnx_path}: not a step export (inputs "
                             f"{[i.name for i in inputs][:3]}...)")
        self._state_dims = [i.shape for i in inputs[2:]]
        self._outputs = ["Z", "c"] + state_output_names(n)
        LOG.info("onnxruntime %s step: %s, %d state tensors, %d threads", _ort_version(),
                 onnx_path, n, threads)

    def step(self, frame: np.ndarray, state: tuple[np.ndarray, ...] | None
             ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
        """Run one frame: ``(B, 3, H, W)`` float32 and the state -> ``(z, c, new_state)``."""
        from glimpse_ros.runtime.step_graph import graph_state_shapes, step_inputs
        from glimpse_ros.runtime.engine import check_frame_input

        frame = check_frame_input(frame)
        shapes = graph_state_shapes(self._state_dims, frame.shape[0])
        z, c, *new = self.session.run(self._outputs, step_inputs(frame, state, shapes))
        return z, c, tuple(new)
