"""OpenVINO CPU engine for the exported backbone (the fastest CPU engine on the reference machine).

Compilation settings and why:

- the ONNX export has dynamic B/T/H/W; we reshape to the one static shape the caller runs (the
  Recognizer always feeds ``(1, 3, T, crop, crop)``) so the CPU plugin can pick shape-specialised
  kernels. A call with another shape recompiles once for that shape (logged).
- ``PERFORMANCE_HINT=LATENCY``: one stream using all threads for the single clip in flight, which
  is what a streaming recogniser wants (THROUGHPUT would split the cores across parallel requests).
- ``INFERENCE_NUM_THREADS``: the configured thread count.
- ``INFERENCE_PRECISION_HINT=f32`` for fp32: explicit, so the result does not depend on the CPU.
  On an AVX2 CPU without bf16/fp16 units f32 is already the plugin default; on AVX512-BF16/AMX
  machines (Zen 4/5, Sapphire Rapids) the default silently switches to bf16 (~2-3 significant
  digits), which we do not want for a model validated in fp32. ``bf16`` sets the hint to bf16
  (only where the CPU has it natively, see :mod:`glimpse_ros.runtime.precision`); ``int8`` runs
  the NNCF-quantised IR (:mod:`glimpse_ros.runtime.int8`) with f32 for its float layers,
  ``int8_mixed`` its mixed IR with bf16 for them.
  :attr:`compiled_precision` reads back what the plugin compiled.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from glimpse_ros.runtime.engine import EngineUnavailable, check_clip
from glimpse_ros.runtime.precision import OPENVINO_HINTS

LOG = logging.getLogger("glimpse_ros.runtime")


def compile_config(threads: int, precision: str) -> dict:
    """CPU plugin settings for ``precision`` (fp32, bf16, int8, int8_mixed); see above."""
    if precision not in OPENVINO_HINTS:
        raise ValueError(f"openvino runs {', '.join(OPENVINO_HINTS)}, not {precision!r}")
    return {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads,
            "INFERENCE_PRECISION_HINT": OPENVINO_HINTS[precision]}


def read_model(onnx_path: str | Path) -> tuple[Any, Any, Any]:
    """Import OpenVINO and read ``onnx_path``: ``(openvino module, Core, Model)``.

    Raises:
        EngineUnavailable: openvino is not installed.
    """
    try:
        import openvino as ov
    except ImportError as err:
        raise EngineUnavailable("openvino is not installed (pip install openvino)") from err
    core = ov.Core()
    return ov, core, core.read_model(str(onnx_path))


class _OpenVinoBase:
    """Model reading, compile settings and compiled precision shared by both engines."""

    name = "openvino"

    def _read(self, onnx_path: str | Path, threads: int, precision: str) -> None:
        """Import OpenVINO, read ``onnx_path`` and keep the compile settings (nothing compiled)."""
        self._ov, self.core, self.model = read_model(onnx_path)
        self.onnx_path = Path(onnx_path)
        self.threads = threads
        self.precision = precision
        self.config = compile_config(threads, precision)
        self.shape: tuple[int, ...] | None = None
        self._request = None

    def _compile_static(self, shapes: list[list[int]]) -> None:
        """Reshape the inputs to the static ``shapes`` (one per input), compile, make a request."""
        self.model.reshape({port: self._ov.PartialShape(s)
                            for port, s in zip(self.model.inputs, shapes)})
        self._compiled = self.core.compile_model(self.model, "CPU", self.config)
        self._request = self._compiled.create_infer_request()

    @property
    def compiled_precision(self) -> str:
        """The compiled model's INFERENCE_PRECISION_HINT as the plugin reports it (``f32``...)."""
        if self._request is None:
            return ""
        hint = self._compiled.get_property("INFERENCE_PRECISION_HINT")  # an ov.Type
        return hint.get_type_name() if hasattr(hint, "get_type_name") else str(hint)

    def kernels(self) -> dict:
        """Kernels the plugin compiled (:mod:`glimpse_ros.runtime.openvino_kernels`).

        Returns ``{}`` before the first compilation.
        """
        from glimpse_ros.runtime.openvino_kernels import kernel_summary

        return {} if self._request is None else kernel_summary(self._compiled, self.precision)


class OpenVinoEngine(_OpenVinoBase):
    """Run the backbone ONNX file (or, int8, its quantised IR) with OpenVINO on the CPU."""

    def __init__(self, onnx_path: str | Path, threads: int = 1,
                 input_shape: tuple[int, ...] | None = None, precision: str = "fp32") -> None:
        """Read ``onnx_path``; compile now when ``input_shape`` is known, else on first use."""
        self._read(onnx_path, threads, precision)
        names = [o.get_any_name() for o in self.model.outputs]
        if names[:2] != ["Z", "c"]:
            raise ValueError(f"{onnx_path}: expected outputs ['Z', 'c'], got {names}")
        if input_shape is not None:
            self._compile(tuple(input_shape))

    def _compile(self, shape: tuple[int, ...]) -> None:
        """Reshape the model to the static ``shape`` and compile it for the CPU."""
        if self.shape is not None:
            LOG.info("openvino: input shape changed %s -> %s, recompiling", self.shape, shape)
        self._compile_static([list(shape)])
        self._z_port, self._c_port = self._compiled.output("Z"), self._compiled.output("c")
        self.shape = shape
        LOG.info("openvino %s: compiled %s for %s, %d threads, LATENCY hint, %s (%s)",
                 self._ov.__version__, self.onnx_path.name, shape, self.threads,
                 self.precision, self.compiled_precision)

    def run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run the backbone: ``x (B, 3, T, H, W) float32 -> (Z, c)`` float32 numpy arrays."""
        x = check_clip(x)
        if x.shape != self.shape:
            self._compile(x.shape)
        result = self._request.infer({0: x})
        # The request owns its output buffers and reuses them on the next call: copy out.
        return np.array(result[self._z_port]), np.array(result[self._c_port])


class OpenVinoStepEngine(_OpenVinoBase):
    """Run the causal backbone's step export (``export_step``) with OpenVINO on the CPU.

    Same compilation settings as :class:`OpenVinoEngine` (static shape, LATENCY, explicit f32);
    the state travels as explicit graph inputs/outputs, see
    :mod:`glimpse_ros.runtime.engine`.
    """

    def __init__(self, onnx_path: str | Path, threads: int = 1,
                 frame_shape: tuple[int, ...] | None = None, precision: str = "fp32") -> None:
        """Read ``onnx_path``; compile now when ``frame_shape`` is known, else on first use."""
        from glimpse_ros.runtime.step_graph import FRAME, FRESH, state_input_names

        self._read(onnx_path, threads, precision)
        names = [i.get_any_name() for i in self.model.inputs]
        n = len(names) - 2
        if names != [FRAME, FRESH] + state_input_names(n):
            raise ValueError(f"{onnx_path}: not a step export (inputs {names[:3]}...)")
        self._state_dims = [[d.get_length() if d.is_static else None
                             for d in i.get_partial_shape()] for i in self.model.inputs[2:]]
        if frame_shape is not None:
            self._compile(tuple(frame_shape))

    def _compile(self, shape: tuple[int, ...]) -> None:
        """Reshape every input to the static shapes of a ``shape`` frame and compile."""
        from glimpse_ros.runtime.step_graph import graph_state_shapes

        if self.shape is not None:
            LOG.info("openvino step: frame shape changed %s -> %s, recompiling", self.shape,
                     shape)
        self._shapes = graph_state_shapes(self._state_dims, shape[0])
        self._compile_static([list(shape), [shape[0]]] + [list(s) for s in self._shapes])
        self._ports = list(self._compiled.outputs)  # Z, c, state_out_0, ...
        self.shape = shape
        LOG.info("openvino %s step: compiled %s for %s, %d state tensors, %d threads, LATENCY "
                 "hint, %s", self._ov.__version__, self.onnx_path.name, shape,
                 len(self._shapes), self.threads, self.precision)

    def step(self, frame: np.ndarray, state: tuple[np.ndarray, ...] | None
             ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
        """Run one frame: ``(B, 3, H, W)`` float32 and the state -> ``(z, c, new_state)``."""
        from glimpse_ros.runtime.step_graph import step_inputs
        from glimpse_ros.runtime.engine import check_frame_input

        frame = check_frame_input(frame)
        if frame.shape != self.shape:
            self._compile(frame.shape)
        result = self._request.infer(step_inputs(frame, state, self._shapes))
        # The request owns its output buffers and reuses them on the next call: copy out.
        z, c, *new = (np.array(result[p]) for p in self._ports)
        return z, c, tuple(new)
