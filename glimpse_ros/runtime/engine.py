"""Backbone engines behind one interface, and the ``auto`` choice between them (DESIGN §3).

An engine runs the inflated ResNet only: ``(B, 3, T, H, W) float32 -> (Z, c)`` with
``Z (B, Dz, T, H/32, W/32)`` and ``c (B, T, Dc)``, numpy in and out. ``torch`` runs the PyTorch
module (the reference); ``onnxruntime``, ``openvino`` and ``tensorrt`` load the ONNX export.

Precision policy (:mod:`glimpse_ros.runtime.precision`): fp32 everywhere by default; ``fp16`` is
a GPU precision (``auto`` falls back to fp32 on a CPU machine and logs it); ``bf16`` and ``int8``
are OpenVINO precisions, refused with a message where the CPU cannot run them natively.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from glimpse_ros.runtime.precision import PRECISIONS, resolve_precision

LOG = logging.getLogger("glimpse_ros.runtime")

ENGINE_NAMES = ("torch", "onnxruntime", "openvino", "tensorrt")
# Fastest first, as measured on the reference CPU (DESIGN §6; `make bench` re-measures).
CPU_PREFERENCE = ("openvino", "onnxruntime", "torch")


class EngineUnavailable(RuntimeError):
    """An engine cannot run on this machine (package missing, no GPU)."""


@runtime_checkable
class BackboneEngine(Protocol):
    """What every engine provides."""

    name: str
    precision: str

    def run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run the backbone: ``x (B, 3, T, H, W) float32 -> (Z, c)`` as float32 numpy arrays."""
        ...


def cpu_count() -> int:
    """Cores this process may use (affinity-aware)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def resolve_threads(threads: int) -> int:
    """Map ``threads`` (0 = every available core) to a positive thread count."""
    if threads < 0:
        raise ValueError(f"threads must be >= 0, got {threads}")
    return threads or cpu_count()


def check_clip(x: np.ndarray) -> np.ndarray:
    """Validate an engine input and return it as a C-contiguous float32 array."""
    if not isinstance(x, np.ndarray):
        raise ValueError(f"engine input must be a numpy array, got {type(x).__name__}")
    if x.ndim != 5 or x.shape[1] != 3:
        raise ValueError(f"engine input must be (B, 3, T, H, W), got shape {x.shape}")
    if x.dtype != np.float32:
        raise ValueError(f"engine input must be float32, got {x.dtype}")
    return np.ascontiguousarray(x)


def module_installed(name: str) -> bool:
    """True when ``name`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def cuda_available() -> bool:
    """True when torch sees a CUDA device."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return bool(torch.cuda.is_available())


def engine_status(name: str) -> tuple[bool, str]:
    """Whether engine ``name`` can run here, and why (not)."""
    if name in ("torch", "onnxruntime", "openvino"):
        ok = module_installed(name)
        return ok, f"{name} is {'installed' if ok else 'not installed'}"
    if name == "tensorrt":
        if not module_installed("tensorrt"):
            return False, "tensorrt is not installed"
        if not cuda_available():
            return False, "tensorrt is installed but no CUDA GPU is visible to torch"
        return True, "tensorrt is installed and a CUDA GPU is present"
    raise ValueError(f"unknown engine {name!r}; choose one of auto, {', '.join(ENGINE_NAMES)}")


def select_backend(requested: str = "auto") -> tuple[str, str]:
    """Resolve ``auto`` to a concrete engine name; return ``(name, reason)``.

    ``auto`` picks TensorRT when tensorrt and a CUDA GPU are present, else the first installed
    engine of :data:`CPU_PREFERENCE` (OpenVINO, ONNX Runtime, torch).
    """
    if requested != "auto":
        ok, why = engine_status(requested)
        if not ok:
            raise EngineUnavailable(f"backend {requested!r} cannot run here: {why}")
        return requested, f"requested explicitly ({why})"
    trt_ok, trt_why = engine_status("tensorrt")
    if trt_ok:
        return "tensorrt", trt_why
    for name in CPU_PREFERENCE:
        ok, _ = engine_status(name)
        if ok:
            skipped = CPU_PREFERENCE[:CPU_PREFERENCE.index(name)]
            extra = f"; not installed: {', '.join(skipped)}" if skipped else ""
            return name, f"{trt_why}; {name} is the fastest installed CPU engine{extra}"
    raise EngineUnavailable("no backbone engine is installed (need torch at least)")


def create_engine(name: str, source: Any, precision: str | None = None, threads: int = 0, *,
                  cache_dir: str | Path | None = None,
                  input_shape: tuple[int, ...] | None = None) -> BackboneEngine:
    """Create a backbone engine.

    Args:
        name: ``auto``, ``torch``, ``onnxruntime``, ``openvino`` or ``tensorrt``.
        source: an ONNX file path, or the PyTorch backbone module (``InflatedResNet``). The torch
            engine needs the module; the others need the ONNX file (a module is exported first,
            into ``cache_dir``, when ``input_shape`` is given).
        precision: ``fp32``, ``fp16`` (GPU), ``bf16`` or ``int8`` (OpenVINO); None = the
            engine's default (fp16 for TensorRT, else fp32).
        threads: CPU threads (0 = all available cores).
        cache_dir: directory for TensorRT engines and ONNX exports of modules.
        input_shape: ``(B, 3, T, H, W)`` the engine will see; lets OpenVINO and TensorRT compile a
            static shape up front (they otherwise compile on the first call). Required for int8
            (the quantised model is calibrated and cached for that shape).

    Raises:
        ValueError: unknown name or precision, a precision this engine or CPU cannot run
            natively (fp16 on a CPU engine, bf16 without native bf16, ...), wrong source type.
        EngineUnavailable: the engine's package (or, for TensorRT, a CUDA GPU) is missing.
    """
    requested_auto = name == "auto"
    resolved, why = select_backend(name)
    if requested_auto:
        LOG.info("backend auto -> %s (%s)", resolved, why)
    gpu = resolved == "tensorrt" or (resolved == "torch" and cuda_available())
    precision = resolve_precision(resolved, precision, requested_auto, gpu)
    threads = resolve_threads(threads)

    if resolved == "torch":
        from glimpse_ros.runtime.torch_engine import TorchEngine

        if isinstance(source, (str, Path)):
            raise ValueError("the torch engine needs the PyTorch backbone module, "
                             "not an ONNX path")
        return TorchEngine(source, precision=precision, threads=threads)

    onnx_path = onnx_source_path(source, cache_dir, input_shape)
    if resolved == "onnxruntime":
        from glimpse_ros.runtime.onnxruntime_engine import OnnxRuntimeEngine

        return OnnxRuntimeEngine(onnx_path, threads=threads)
    if resolved == "openvino":
        from glimpse_ros.runtime.openvino_engine import OpenVinoEngine

        onnx_path = openvino_model_path(onnx_path, precision, cache_dir, input_shape, threads)
        return OpenVinoEngine(onnx_path, threads=threads, input_shape=input_shape,
                              precision=precision)
    from glimpse_ros.runtime.tensorrt_engine import TensorRTEngine

    return TensorRTEngine(onnx_path, precision=precision, cache_dir=cache_dir,
                          input_shape=input_shape)


def onnx_source_path(source: Any, cache_dir: str | Path | None,
                     shape: tuple[int, ...] | None, step: bool = False) -> Path:
    """Return an ONNX path for ``source`` (exporting a module into ``cache_dir`` when needed).

    Args:
        source: an ONNX file path, or the backbone module to export.
        cache_dir: where module exports are cached.
        shape: ``(B, 3, T, H, W)`` for a clip export, ``(B, 3, H, W)`` for a step export.
        step: export the frame step (``export_step``) instead of the clip graph.
    """
    if isinstance(source, (str, Path)):
        path = Path(source).expanduser()
        if not path.is_file():
            raise ValueError(f"{path}: ONNX file not found")
        return path
    from glimpse_ros.runtime.export import export_module_cached

    if shape is None:
        raise ValueError("exporting a module for a non-torch step engine needs frame_shape" if step
                         else "exporting a module for a non-torch engine needs input_shape "
                         "(B,3,T,H,W)")
    return export_module_cached(source, cache_dir, shape, step=step)


def openvino_model_path(onnx_path: Path, precision: str, cache_dir: str | Path | None,
                        shape: tuple[int, ...] | None, threads: int, step: bool = False) -> Path:
    """The file OpenVINO loads: ``onnx_path``, or for int8 its quantised IR for ``shape``."""
    if precision != "int8":
        return onnx_path
    from glimpse_ros.runtime.int8 import int8_model

    if shape is None:
        raise ValueError("precision int8 needs frame_shape (the step is calibrated for one shape)"
                         if step else "precision int8 needs input_shape (the model is calibrated "
                         "for one shape)")
    return int8_model(onnx_path, cache_dir, shape, threads)


__all__ = ["BackboneEngine", "CPU_PREFERENCE", "ENGINE_NAMES", "EngineUnavailable", "PRECISIONS",
           "check_clip",
           "cpu_count", "create_engine", "engine_status", "onnx_source_path",
           "openvino_model_path", "resolve_threads", "select_backend"]
