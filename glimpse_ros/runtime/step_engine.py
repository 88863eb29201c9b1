"""Frame-step engines for causal backbones (DESIGN §3, streaming backbone).

A step engine runs one frame of a causal ``InflatedResNet`` with an explicit state:
``step(frame (B, 3, H, W) float32, state) -> (z (B, Dz, H/32, W/32), c (B, Dc), new_state)``,
numpy in and out. The state is a tuple of float32 arrays, one per temporal conv in network order
(``InflatedResNet.state_shapes``: its last ``kt - 1`` input frames); ``None`` starts a sequence.
States are values: stepping never modifies a state passed in, so any state can be stepped from
again. ``torch`` runs the module (the reference); ``onnxruntime``, ``openvino`` and ``tensorrt``
load the step's ONNX export (:mod:`glimpse_ros.runtime.export_step`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional, Protocol, runtime_checkable

import numpy as np
import torch

from glimpse_ros.runtime.engine import (onnx_source_path, openvino_model_path, resolve_threads,
                                        select_backend)
from glimpse_ros.runtime.precision import resolve_precision

LOG = logging.getLogger("glimpse_ros.runtime")

StepState = tuple[np.ndarray, ...]


@runtime_checkable
class BackboneStepEngine(Protocol):
    """What every step engine provides."""

    name: str
    precision: str

    def step(self, frame: np.ndarray, state: Optional[StepState]
             ) -> tuple[np.ndarray, np.ndarray, StepState]:
        """Run one frame: ``(B, 3, H, W)`` float32 and the state -> ``(z, c, new_state)``."""
        ...


def check_frame_input(frame: np.ndarray, shape: Optional[tuple[int, ...]] = None) -> np.ndarray:
    """Validate a step input (and its shape when the engine is fixed to one); C-contiguous."""
    if not isinstance(frame, np.ndarray):
        raise ValueError(f"step input must be a numpy array, got {type(frame).__name__}")
    if frame.ndim != 4 or frame.shape[1] != 3:
        raise ValueError(f"step input must be (B, 3, H, W), got shape {frame.shape}")
    if frame.dtype != np.float32:
        raise ValueError(f"step input must be float32, got {frame.dtype}")
    if shape is not None and tuple(frame.shape) != tuple(shape):
        raise ValueError(f"step input shape {frame.shape} differs from the engine's frame shape "
                         f"{tuple(shape)} (the step graph is compiled for one frame size)")
    return np.ascontiguousarray(frame)


def check_state(state: StepState, shapes: list[tuple[int, ...]]) -> None:
    """Raise ``ValueError`` unless ``state`` has the engine's number and shapes of arrays."""
    got = [tuple(s.shape) for s in state]
    if got != [tuple(s) for s in shapes]:
        raise ValueError(f"state: shapes {got[:2]}... ({len(got)} arrays) do not match the "
                         f"backbone's {[tuple(s) for s in shapes][:2]}... ({len(shapes)})")


class TorchStepEngine:
    """Reference step engine: ``InflatedResNet.step`` in eager mode (fp32)."""

    name = "torch"

    def __init__(self, module: torch.nn.Module, threads: int = 1) -> None:
        """Wrap a causal ``InflatedResNet`` (switched to eval mode)."""
        if not getattr(module, "causal", False):
            raise ValueError("the step engine needs a causal backbone (temporal_padding: causal)")
        self.module = module.eval()
        self.precision = "fp32"
        self.device = next(module.parameters()).device
        if self.device.type == "cpu" and torch.get_num_threads() != threads:
            torch.set_num_threads(threads)

    @torch.inference_mode()
    def step(self, frame: np.ndarray, state: Optional[StepState]
             ) -> tuple[np.ndarray, np.ndarray, StepState]:
        """Run one frame; see the module docstring."""
        from glimpse_ros.model.backbone import BackboneState

        frame = check_frame_input(frame)
        prev = None
        if state is not None:
            check_state(state, self.module.state_shapes(frame.shape[0], *frame.shape[2:]))
            prev = BackboneState(tuple(torch.from_numpy(np.ascontiguousarray(s)).to(self.device)
                                       for s in state))
        z, c, new = self.module.step(torch.from_numpy(frame).to(self.device), prev)
        # The new buffers are views of this step's windows; contiguous copies make them values.
        return (z.cpu().numpy(), c.cpu().numpy(),
                tuple(b.contiguous().cpu().numpy() for b in new.buffers))


def create_step_engine(name: str, source: Any, precision: Optional[str] = None,
                       threads: int = 0, *, cache_dir: str | Path | None = None,
                       frame_shape: Optional[tuple[int, int, int, int]] = None
                       ) -> BackboneStepEngine:
    """Create a step engine for a causal backbone.

    Args:
        name: ``auto``, ``torch``, ``onnxruntime``, ``openvino`` or ``tensorrt``.
        source: the causal ``InflatedResNet`` module, or the path of its step ONNX export (a
            module is exported into ``cache_dir`` for the ONNX engines).
        precision: ``fp32``, ``fp16`` (TensorRT only), ``bf16`` or ``int8`` (OpenVINO only,
            where the CPU runs them natively); None = fp16 on TensorRT, else fp32.
        threads: CPU threads (0 = all available cores).
        cache_dir: directory for ONNX exports of modules and TensorRT engines.
        frame_shape: ``(B, 3, H, W)`` the engine will see (needed to export or compile, and for
            int8: the quantised step is calibrated and cached for that shape).

    Raises:
        ValueError: unknown name or precision, a precision this engine or CPU cannot run
            natively, wrong source type.
        EngineUnavailable: the engine's package (or, for TensorRT, a CUDA GPU) is missing.
    """
    resolved, why = select_backend(name)
    if name == "auto":
        LOG.info("step backend auto -> %s (%s)", resolved, why)
    precision = resolve_precision(resolved, precision, name == "auto", resolved == "tensorrt")
    threads = resolve_threads(threads)
    if resolved == "torch":
        if isinstance(source, (str, Path)):
            raise ValueError("the torch step engine needs the PyTorch backbone module, "
                             "not an ONNX path")
        return TorchStepEngine(source, threads=threads)
    onnx_path = onnx_source_path(source, cache_dir, frame_shape, step=True)
    if resolved == "onnxruntime":
        from glimpse_ros.runtime.onnxruntime_engine import OnnxRuntimeStepEngine

        return OnnxRuntimeStepEngine(onnx_path, threads=threads)
    if resolved == "openvino":
        from glimpse_ros.runtime.openvino_engine import OpenVinoStepEngine

        onnx_path = openvino_model_path(onnx_path, precision, cache_dir, frame_shape, threads,
                                        step=True)
        return OpenVinoStepEngine(onnx_path, threads=threads, frame_shape=frame_shape,
                                  precision=precision)
    from glimpse_ros.runtime.tensorrt_step_engine import TensorRTStepEngine

    return TensorRTStepEngine(onnx_path, precision=precision, cache_dir=cache_dir,
                              frame_shape=frame_shape)


__all__ = ["BackboneStepEngine", "StepState", "TorchStepEngine", "check_frame_input",
           "check_state", "create_step_engine"]
