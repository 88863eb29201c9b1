"""What the Recognizer loads a model from: a checkpoint (PyTorch) or a model bundle (no torch).

A checkpoint gives the PyTorch backbone and head (torch engine, or exported and cached for the
others); a bundle (:mod:`glimpse_ros.runtime.bundle`) gives their ONNX graphs, which run on ONNX
Runtime or OpenVINO without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from glimpse_ros.config import ModelConfig
from glimpse_ros.runtime.bundle import is_bundle, load_bundle


@dataclass
class ModelSource:
    """A loaded model: config, labels, and either the torch modules or the ONNX graphs.

    Attributes:
        path: the checkpoint file or bundle directory.
        backbone, head: ``InflatedResNet`` / ``GlimpseCloudsHead`` (checkpoint), else None.
        backbone_onnx, head_onnx: the bundle's graphs, else None.
    """

    path: Path
    config: ModelConfig
    labels: list[str]
    backbone: Any = None
    head: Any = None
    backbone_onnx: Optional[Path] = None
    head_onnx: Optional[Path] = None

    @property
    def is_bundle(self) -> bool:
        """True for a model bundle (ONNX graphs, no torch modules)."""
        return self.backbone_onnx is not None


def load_model_source(path: Path) -> ModelSource:
    """Load the bundle directory or checkpoint file at ``path`` (validated, see each loader).

    Raises:
        ValueError: a bad checkpoint or bundle (naming the file and the problem).
    """
    if is_bundle(path):
        b = load_bundle(path)
        return ModelSource(path, b.config, b.labels, backbone_onnx=b.backbone_onnx,
                           head_onnx=b.head_onnx)
    from glimpse_ros.model.checkpoint import load_checkpoint

    loaded = load_checkpoint(path)
    return ModelSource(path, loaded.config, list(loaded.labels), loaded.model.backbone,
                       loaded.model.head)


__all__ = ["ModelSource", "load_model_source"]
