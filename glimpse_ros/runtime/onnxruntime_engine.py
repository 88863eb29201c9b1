"""ONNX Runtime CPU engine for the exported backbone."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from glimpse_ros.runtime.engine import EngineUnavailable, check_clip

LOG = logging.getLogger("glimpse_ros.runtime")


class OnnxRuntimeEngine:
    """Run the backbone ONNX file with ONNX Runtime's CPU execution provider.

    Graph optimisations are all enabled; ``threads`` sets the intra-op pool size (inter-op = 1, the
    backbone is a chain of convolutions with nothing to run in parallel).
    """

    name = "onnxruntime"

    def __init__(self, onnx_path: str | Path, threads: int = 1) -> None:
        """Load ``onnx_path`` into an inference session."""
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
        self.precision = "fp32"
        self.session = ort.InferenceSession(str(onnx_path), sess_options=opts,
                                            providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        outputs = [o.name for o in self.session.get_outputs()]
        if outputs[:2] != ["Z", "c"]:
            raise ValueError(f"{onnx_path}: expected outputs ['Z', 'c'], got {outputs}")
        LOG.info("onnxruntime %s: %s, %d threads", ort.__version__, onnx_path, threads)

    def run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run the backbone: ``x (B, 3, T, H, W) float32 -> (Z, c)`` float32 numpy arrays."""
        z, c = self.session.run(["Z", "c"], {self.input_name: check_clip(x)})
        return z, c
