"""Engine selection (``auto``) and creation: the one module above every engine (DESIGN §3).

``torch`` runs the PyTorch module (the reference); ``onnxruntime``, ``openvino`` and ``tensorrt``
load the ONNX export (a module is exported on the fly into the cache). ``auto`` picks TensorRT
when a CUDA GPU and tensorrt are present, else the fastest installed CPU engine.

Precision policy (:mod:`glimpse_ros.runtime.precision`): fp32 everywhere by default; ``fp16`` is
a GPU precision (``auto`` falls back to fp32 on a CPU machine and logs it); ``bf16`` and ``int8``
are OpenVINO precisions, refused with a message where the CPU cannot run them natively.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any, Optional

from glimpse_ros.runtime.engine import (BackboneEngine, BackboneStepEngine, EngineUnavailable,
                                        resolve_threads)
from glimpse_ros.runtime.precision import INT8_PRECISIONS, resolve_precision

LOG = logging.getLogger("glimpse_ros.runtime")

ENGINE_NAMES = ("torch", "onnxruntime", "openvino", "tensorrt")
# Fastest first, as measured on the reference CPU (DESIGN §6; `make bench` re-measures).
CPU_PREFERENCE = ("openvino", "onnxruntime", "torch")


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


def create_step_engine(name: str, source: Any, precision: Optional[str] = None,
                       threads: int = 0, *, cache_dir: str | Path | None = None,
                       frame_shape: Optional[tuple[int, int, int, int]] = None,
                       held_state: bool = False) -> BackboneStepEngine:
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
        held_state: OpenVINO keeps the state inside the compiled model
            (:mod:`glimpse_ros.runtime.openvino_held_state`): faster, but only the latest state
            continues a sequence. The other engines ignore it (their states are values).

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
        from glimpse_ros.runtime.torch_engine import TorchStepEngine

        return TorchStepEngine(source, threads=threads)
    onnx_path = onnx_source_path(source, cache_dir, frame_shape, step=True)
    if resolved == "onnxruntime":
        from glimpse_ros.runtime.onnxruntime_engine import OnnxRuntimeStepEngine

        return OnnxRuntimeStepEngine(onnx_path, threads=threads)
    if resolved == "openvino":
        from glimpse_ros.runtime.openvino_engine import OpenVinoStepEngine
        from glimpse_ros.runtime.openvino_held_state import OpenVinoHeldStateStepEngine

        onnx_path = openvino_model_path(onnx_path, precision, cache_dir, frame_shape, threads,
                                        step=True)
        kind = OpenVinoHeldStateStepEngine if held_state else OpenVinoStepEngine
        return kind(onnx_path, threads=threads, frame_shape=frame_shape, precision=precision)
    from glimpse_ros.runtime.tensorrt_step_engine import TensorRTStepEngine

    return TensorRTStepEngine(onnx_path, precision=precision, cache_dir=cache_dir,
                              frame_shape=frame_shape)


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
    from glimpse_ros.runtime.export.cache import export_module_cached

    if shape is None:
        raise ValueError("exporting a module for a non-torch step engine needs frame_shape" if step
                         else "exporting a module for a non-torch engine needs input_shape "
                         "(B,3,T,H,W)")
    return export_module_cached(source, cache_dir, shape, step=step)


def openvino_model_path(onnx_path: Path, precision: str, cache_dir: str | Path | None,
                        shape: tuple[int, ...] | None, threads: int, step: bool = False) -> Path:
    """The file OpenVINO loads: ``onnx_path``, or for int8 / int8_mixed its quantised IR."""
    if precision not in INT8_PRECISIONS:
        return onnx_path
    from glimpse_ros.runtime.int8 import int8_model

    if shape is None:
        raise ValueError(f"precision {precision} needs frame_shape (the step is calibrated for "
                         "one shape)" if step else f"precision {precision} needs input_shape "
                         "(the model is calibrated for one shape)")
    return int8_model(onnx_path, cache_dir, shape, threads,
                      mixed=precision == "int8_mixed")


__all__ = ["CPU_PREFERENCE", "ENGINE_NAMES", "create_engine", "create_step_engine",
           "cuda_available", "engine_status", "module_installed", "onnx_source_path",
           "openvino_model_path", "select_backend"]
