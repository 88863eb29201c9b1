"""TensorRT GPU engine: build from the ONNX export, cache, run (DESIGN §3).

``tensorrt`` is imported lazily (it is an optional extra, ``pip install tensorrt``), and CUDA
memory and streams come from torch, so the machine needs a CUDA build of torch and a GPU. The
engine has one optimisation profile, for the exact input shape it runs (the Recognizer always feeds
``(1, 3, T, crop, crop)``); a call with another shape builds (or loads) the engine for it.
Builds go through :class:`~glimpse_ros.runtime.trt_cache.EngineCache`, so a build happens once per
(ONNX, TensorRT version, GPU, precision, shape), and a corrupt cached engine is rebuilt.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from glimpse_ros.runtime.engine import EngineUnavailable, check_clip
from glimpse_ros.runtime.model_files import file_sha256
from glimpse_ros.runtime.trt_cache import EngineCache, TrtTarget, engine_key

LOG = logging.getLogger("glimpse_ros.runtime")
WORKSPACE_BYTES = 4 << 30


def import_tensorrt() -> Any:
    """Import tensorrt and check for a CUDA GPU; ``EngineUnavailable`` says what is missing."""
    try:
        import tensorrt as trt
    except ImportError as err:
        raise EngineUnavailable("tensorrt backend: the tensorrt package is not installed "
                                "(pip install tensorrt, on a machine with an NVIDIA GPU)") from err
    import torch

    if not torch.cuda.is_available():
        raise EngineUnavailable("tensorrt backend: no CUDA GPU available (torch.cuda."
                                "is_available() is False); use backend auto, openvino or "
                                "onnxruntime on this machine")
    return trt


def current_target(trt: Any, precision: str, input_shape: tuple[int, ...]) -> TrtTarget:
    """Describe this machine's TensorRT + GPU for the cache key."""
    import torch

    dev = torch.cuda.current_device()
    return TrtTarget(tensorrt_version=str(trt.__version__),
                     gpu_name=torch.cuda.get_device_name(dev),
                     compute_capability=tuple(torch.cuda.get_device_capability(dev)),
                     precision=precision, input_shape=tuple(int(s) for s in input_shape))


def _progress_monitor(trt: Any) -> Any:
    """An ``IProgressMonitor`` logging build phases (None on TensorRT versions without it)."""
    if not hasattr(trt, "IProgressMonitor"):
        return None

    class LogProgress(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self._steps: dict[str, int] = {}
            self._logged: dict[str, float] = {}

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            self._steps[phase_name] = num_steps
            LOG.info("TensorRT build: %s started (%d steps)", phase_name, num_steps)

        def step_complete(self, phase_name: str, step: int) -> bool:
            now = time.monotonic()
            if now - self._logged.get(phase_name, 0.0) > 5.0:  # at most one line per 5 s
                self._logged[phase_name] = now
                LOG.info("TensorRT build: %s %d/%d", phase_name, step + 1,
                         self._steps.get(phase_name, 0))
            return True  # keep building

        def phase_finish(self, phase_name: str) -> None:
            LOG.info("TensorRT build: %s finished", phase_name)

    return LogProgress()


def build_serialized(trt: Any, onnx_path: Path, precision: str,
                     input_shape: tuple[int, ...],
                     profile_shapes: dict[str, tuple[int, ...]] | None = None) -> bytes:
    """Parse ``onnx_path`` and build a serialized engine for one static input shape.

    ``profile_shapes``: the static shape of every input by name (graphs with several inputs,
    e.g. the step export); default ``{"x": input_shape}``.
    """
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if int(str(trt.__version__).split(".")[0]) < 10:  # explicit batch is the only mode from 10
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"{onnx_path}: TensorRT cannot parse the ONNX file: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    if precision == "fp16":
        if not hasattr(trt.BuilderFlag, "FP16"):
            raise RuntimeError(f"TensorRT {trt.__version__} has no FP16 builder flag; "
                               "use precision fp32")
        config.set_flag(trt.BuilderFlag.FP16)
    elif hasattr(trt.BuilderFlag, "TF32"):
        # TensorRT enables TF32 (10-bit mantissa) for fp32 builds on Ampere and newer: fp32 is
        # meant to match torch's fp32 (DESIGN §3), so it is switched off.
        config.clear_flag(trt.BuilderFlag.TF32)
    profile = builder.create_optimization_profile()
    for name, shape in (profile_shapes or {"x": input_shape}).items():
        profile.set_shape(name, shape, shape, shape)
    config.add_optimization_profile(profile)
    monitor = _progress_monitor(trt)
    if monitor is not None:
        config.progress_monitor = monitor
    LOG.info("TensorRT %s: building %s engine for %s from %s (minutes on first use)",
             trt.__version__, precision, input_shape, onnx_path.name)
    start = time.monotonic()
    blob = builder.build_serialized_network(network, config)
    if blob is None:
        raise RuntimeError(f"{onnx_path}: TensorRT engine build failed (see the log above)")
    LOG.info("TensorRT build done in %.1f s", time.monotonic() - start)
    return bytes(blob)


class TensorRTEngine:
    """Run the backbone with TensorRT on the current CUDA device (fp16 by default)."""

    name = "tensorrt"

    def __init__(self, onnx_path: str | Path, precision: str = "fp16",
                 cache_dir: str | Path | None = None,
                 input_shape: tuple[int, ...] | None = None) -> None:
        """Prepare the engine now when ``input_shape`` is given, else on the first call."""
        self._trt = import_tensorrt()
        if precision not in ("fp16", "fp32"):
            raise ValueError(f"precision must be fp16 or fp32, got {precision!r}")
        self.onnx_path = Path(onnx_path)
        self.onnx_sha256 = file_sha256(self.onnx_path)
        self.precision = precision
        self.cache = EngineCache(cache_dir)
        self.runtime = self._trt.Runtime(self._trt.Logger(self._trt.Logger.WARNING))
        self.shape: tuple[int, ...] | None = None
        self.decision = ""
        if input_shape is not None:
            self._prepare(tuple(input_shape))

    def _prepare(self, shape: tuple[int, ...]) -> None:
        """Load or build the engine for ``shape`` and allocate its CUDA buffers."""
        import torch

        trt = self._trt
        target = current_target(trt, self.precision, shape)
        key = engine_key(self.onnx_sha256, target)
        info = {"onnx": str(self.onnx_path), "onnx_sha256": self.onnx_sha256,
                **target.__dict__}
        result = self.cache.load_or_build(
            key, self.runtime.deserialize_cuda_engine,
            lambda: build_serialized(trt, self.onnx_path, self.precision, shape), info)
        self.decision = result.decision
        self.engine = result.engine
        self.context = self.engine.create_execution_context()
        self.context.set_input_shape("x", shape)
        dev = torch.device("cuda")
        self._x = torch.empty(shape, dtype=torch.float32, device=dev)
        self._out = {n: torch.empty(tuple(self.context.get_tensor_shape(n)), dtype=torch.float32,
                                    device=dev) for n in ("Z", "c")}
        self.context.set_tensor_address("x", self._x.data_ptr())
        for n, t in self._out.items():
            self.context.set_tensor_address(n, t.data_ptr())
        self.stream = torch.cuda.Stream()
        self.shape = shape
        LOG.info("TensorRT engine ready (%s, %s, %s)", result.decision, self.precision, shape)

    def run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run the backbone: ``x (B, 3, T, H, W) float32 -> (Z, c)`` float32 numpy arrays."""
        import torch

        x = check_clip(x)
        if x.shape != self.shape:
            self._prepare(x.shape)
        with torch.cuda.stream(self.stream):
            self._x.copy_(torch.from_numpy(x))
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise RuntimeError("TensorRT execution failed")
            z = self._out["Z"].cpu()  # synchronises with the stream
            c = self._out["c"].cpu()
        return z.numpy(), c.numpy()
