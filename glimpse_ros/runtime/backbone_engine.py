"""The recognizer's backbone engine, built from a loaded checkpoint or bundle (DESIGN §3).

Owns the choice between the clip engine (windowed models) and the step engine (causal models),
the source each engine is built from (the torch module, the checkpoint's cached ONNX export, or
a model bundle's graph),
and the recovery from a cached export that does not load: it is deleted and exported once again.
"""

from __future__ import annotations

import logging

from glimpse_ros.config import RecognizerConfig
from glimpse_ros.runtime.engine import BackboneEngine, BackboneStepEngine, EngineUnavailable
from glimpse_ros.runtime.factory import create_engine, create_step_engine
from glimpse_ros.runtime.model_source import ModelSource

LOG = logging.getLogger("glimpse_ros.runtime")


def build_backbone_engine(cfg: RecognizerConfig, name: str, source: ModelSource,
                          input_shape: tuple[int, ...],
                          step: bool) -> BackboneEngine | BackboneStepEngine:
    """Create the clip (causal models: step) engine; re-export a bad cached ONNX once.

    Args:
        cfg: precision, threads and engine cache directory.
        name: the selected backend (``select_backend``).
        source: the loaded checkpoint (its backbone module; the ONNX cache is keyed on the
            file) or model bundle (its ``backbone.onnx``, used as is).
        input_shape: clip ``(1, 3, T, S, S)``, or one frame ``(1, 3, S, S)`` when ``step``.
        step: build a step engine (causal model streamed frame by frame).

    Raises:
        ValueError: the torch backend for a model bundle (it holds no PyTorch weights).
    """

    def create(source: object) -> BackboneEngine | BackboneStepEngine:
        if step:
            # The Recognizer steps one stream forward and restarts it with None: an engine
            # that holds the state itself (OpenVINO) serves it without copying it each frame.
            return create_step_engine(name, source, cfg.precision, cfg.num_threads,
                                      cache_dir=cfg.engine_cache_dir, frame_shape=input_shape,
                                      held_state=True)
        return create_engine(name, source, cfg.precision, cfg.num_threads,
                             cache_dir=cfg.engine_cache_dir, input_shape=input_shape)

    if source.is_bundle:
        if name == "torch":
            raise ValueError(f"recognizer.backend: {source.path} is a model bundle (ONNX, no "
                             "PyTorch weights): use onnxruntime or openvino, not torch")
        return create(source.backbone_onnx)
    if name == "torch":
        return create(source.backbone)
    from glimpse_ros.runtime.export.cache import onnx_for_checkpoint

    backbone, path = source.backbone, source.path
    onnx_path = onnx_for_checkpoint(path, backbone, cfg.engine_cache_dir, input_shape, step)
    try:
        return create(onnx_path)
    except (EngineUnavailable, ValueError):
        raise
    except Exception as err:  # noqa: BLE001 - engines raise their own types on a bad file
        LOG.warning("cached ONNX export %s does not load (%s: %s): exporting again",
                    onnx_path, type(err).__name__, str(err)[:200])
        onnx_path.unlink(missing_ok=True)
        onnx_path = onnx_for_checkpoint(path, backbone, cfg.engine_cache_dir, input_shape, step)
        return create(onnx_path)


__all__ = ["build_backbone_engine"]
