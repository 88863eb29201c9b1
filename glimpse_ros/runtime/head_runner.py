"""The Recognizer's recurrent head: eager PyTorch, or the exported step on an ONNX engine.

Both runners keep the head state of one stream between calls and step frames in order:

- :class:`EagerHeadRunner` runs the (fp32 or int8) ``GlimpseCloudsHead.step`` in PyTorch with
  :data:`HEAD_THREADS` threads;
- :class:`ExportedHeadRunner` runs the head step exported to ONNX
  (:mod:`glimpse_ros.runtime.export.head`) on ONNX Runtime (one thread) or OpenVINO (the
  backbone engine's threads)
  (:class:`~glimpse_ros.runtime.head_engine.HeadStepEngine`), fp32, agreeing with the eager
  fp32 head to float tolerance; on OpenVINO also with int8 weights
  (:mod:`glimpse_ros.runtime.head_int8`).

:func:`head_engine_choice` says which one a configuration gets (``head_engine: auto``: the
exported step on the backbone's engine when that is ONNX Runtime or OpenVINO and the head is
fp32, or OpenVINO and the head int8; otherwise, and with ``head_engine: torch``, eager). Nothing
here imports torch at module level: the exported runner needs none.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from glimpse_ros.config import RecognizerConfig
from glimpse_ros.runtime.engine import EngineUnavailable
from glimpse_ros.runtime.head_engine import BACKENDS, HeadStepEngine
from glimpse_ros.runtime.model_source import ModelSource
from glimpse_ros.runtime.threads import HEAD_THREADS, exported_head_threads, head_threads

LOG = logging.getLogger("glimpse_ros.runtime")


@dataclass
class HeadFrame:
    """One stepped frame: ``logits (N,)`` and ``glimpses (G, 4)``, float32 numpy."""

    logits: np.ndarray
    glimpses: np.ndarray


class HeadRunner(Protocol):
    """Steps one stream's head over frames, keeping its state between calls."""

    name: str  # "torch" or the engine running the exported step

    def reset(self) -> None:
        """Start a new sequence (fresh state)."""

    def run(self, z: np.ndarray, c: np.ndarray) -> list[HeadFrame]:
        """Step ``n`` frames in order; ``z (1, Dz, n, h, w)``, ``c (1, n, Dc)`` float32."""

    @property
    def state(self) -> Any:
        """Return the current state; None before the first frame of a sequence."""


class EagerHeadRunner:
    """``GlimpseCloudsHead.step`` in PyTorch (an inference copy from ``prepare_head``)."""

    name = "torch"

    def __init__(self, head: Any) -> None:
        self.head = head
        self._state: Any = None

    @property
    def state(self) -> Any:
        """The ``HeadState`` after the last frame (None at a sequence start)."""
        return self._state

    def reset(self) -> None:
        """Drop the state."""
        self._state = None

    def run(self, z: np.ndarray, c: np.ndarray) -> list[HeadFrame]:
        """Step the frames of ``z (1, Dz, n, h, w)``, ``c (1, n, Dc)`` with HEAD_THREADS."""
        import torch

        zt, ct = torch.from_numpy(z), torch.from_numpy(c)
        out = []
        with head_threads(), torch.inference_mode():
            if self._state is None:
                self._state = self.head.initial_state(1, device=zt.device, dtype=zt.dtype)
            for i in range(zt.shape[2]):
                self._state, step = self.head.step(self._state, zt[:, :, i], ct[:, i])
                out.append(HeadFrame(step.logits[0].numpy(),  # (N,)
                                     step.glimpses[0].numpy().astype(np.float32)))  # (G, 4)
        return out


class ExportedHeadRunner:
    """The exported head step on ONNX Runtime or OpenVINO (state kept by the engine)."""

    def __init__(self, engine: HeadStepEngine) -> None:
        self.engine = engine
        self.name = engine.name
        self._fresh = True

    @property
    def state(self) -> Any:
        """A copy of the graph state after the last frame (None at a sequence start)."""
        return None if self._fresh else self.engine.state

    def reset(self) -> None:
        """Zero the engine's state."""
        self.engine.reset()
        self._fresh = True

    def run(self, z: np.ndarray, c: np.ndarray) -> list[HeadFrame]:
        """Step the frames of ``z (1, Dz, n, h, w)``, ``c (1, n, Dc)`` on the engine."""
        out = []
        for i in range(z.shape[2]):
            step = self.engine.step(z[:, :, i], c[:, i])  # (1, Dz, h, w), (1, Dc)
            out.append(HeadFrame(step.logits[0], step.glimpses[0].astype(np.float32)))
            self._fresh = False
        return out


def head_engine_choice(config: RecognizerConfig, backbone_engine: str,
                       exportable: bool = True) -> tuple[str, str]:
    """``(engine, why)``: "torch" (eager) or the backend to run the exported head step on.

    Args:
        config: ``head_engine`` and ``head_precision``.
        backbone_engine: name of the backbone engine in use.
        exportable: False for heads the exporter refuses (random-glimpse ablation).
    """
    if config.head_engine == "torch":
        return "torch", "head_engine: torch"
    if config.head_precision == "int8" and backbone_engine != "openvino":
        return "torch", f"head_precision int8 runs eagerly beside {backbone_engine}"
    if backbone_engine not in BACKENDS:
        return "torch", f"no exported head step on {backbone_engine}"
    if not exportable:
        return "torch", "this head (random glimpse locations) cannot be exported"
    if config.head_precision == "int8":
        return backbone_engine, f"exported head step on {backbone_engine}, int8 weights"
    return backbone_engine, f"exported head step on {backbone_engine}, fp32"


def build_head_runner(config: RecognizerConfig, source: ModelSource,
                      backbone_engine: str) -> tuple[HeadRunner, str]:
    """The runner for ``config`` (see :func:`head_engine_choice`) and why it was chosen.

    From a checkpoint, the exported step is cached once per checkpoint
    (:func:`~glimpse_ros.runtime.export.cache.head_onnx_for_checkpoint`); a cached file that
    the engine cannot load is deleted and exported once again. A model bundle's ``head.onnx``
    is used as is, and only it can run (the bundle holds no PyTorch head).

    Args:
        config: head_engine, head_precision, engine_cache_dir, num_threads (the backbone
            engine's threads, :func:`~glimpse_ros.runtime.threads.exported_head_threads`).
        source: the loaded checkpoint or bundle.
        backbone_engine: name of the backbone engine in use.

    Raises:
        ValueError: a bundle with a configuration that needs the eager head, or an int8 head
            without a quantised torch engine (``prepare_head``).
    """
    head = source.head
    name, why = head_engine_choice(config, backbone_engine,
                                   getattr(head, "random_locations", None) is None)
    precision = config.head_precision

    def engine(onnx: Path) -> HeadStepEngine:
        if precision == "int8":  # OpenVINO: the export with int8 weights, cached
            from glimpse_ros.runtime.head_int8 import head_int8_model

            onnx = head_int8_model(onnx, config.engine_cache_dir)
        return HeadStepEngine(onnx, name, precision=precision,
                              threads=exported_head_threads(name, config.num_threads or 1))

    if source.is_bundle:
        if name == "torch":
            raise ValueError(f"recognizer.head_engine: {source.path} is a model bundle: its "
                             "head runs as the exported step only (head_engine auto, "
                             "backend onnxruntime or openvino, head_precision fp32, or int8 on "
                             f"openvino); {why}")
        return ExportedHeadRunner(engine(source.head_onnx)), why
    if name == "torch":
        from glimpse_ros.model.quantize import prepare_head

        return EagerHeadRunner(prepare_head(head.eval(), config.head_precision)), why
    from glimpse_ros.runtime.export.cache import head_onnx_for_checkpoint

    s = source.config.crop_size

    def export() -> Path:
        return head_onnx_for_checkpoint(source.path, head.eval(), config.engine_cache_dir,
                                        source.backbone.feature_size(s, s), (s, s))

    path = export()
    try:
        step_engine = engine(path)
    except (EngineUnavailable, ValueError):
        raise
    except Exception as err:  # noqa: BLE001 - engines raise their own types on a bad file
        LOG.warning("cached head export %s does not load (%s: %s): exporting again", path,
                    type(err).__name__, str(err)[:200])
        path.unlink(missing_ok=True)
        step_engine = engine(export())
    return ExportedHeadRunner(step_engine), why


__all__ = ["EagerHeadRunner", "ExportedHeadRunner", "HEAD_THREADS", "HeadFrame", "HeadRunner",
           "build_head_runner", "head_engine_choice"]
