"""ONNX export of the backbone clip graph (DESIGN §3).

The graph has one input ``x (B, 3, T, H, W)`` and two outputs ``Z (B, Dz, T, H/32, W/32)`` and
``c (B, T, Dc)``; B, T, H and W are dynamic axes, and engines that profit from a static shape
(OpenVINO, TensorRT) fix it when they compile. Opset 17.

We use PyTorch's TorchScript-based exporter (``dynamo=False``): the backbone is a static chain of
convolutions that it handles exactly, and it needs no extra package (the dynamo exporter needs
``onnxscript``).
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

LOG = logging.getLogger("glimpse_ros.runtime")

OPSET = 17
# Bump when the export itself changes (names, axes, opset), so cached files are not reused.
EXPORT_VERSION = 1
DYNAMIC_AXES = {"x": {0: "B", 2: "T", 3: "H", 4: "W"},
                "Z": {0: "B", 2: "T", 3: "h", 4: "w"},
                "c": {0: "B", 1: "T"}}


def export_backbone(backbone: torch.nn.Module, path: str | Path,
                    input_shape: tuple[int, ...] = (1, 3, 8, 224, 224),
                    opset: int = OPSET) -> Path:
    """Export ``backbone`` (an ``InflatedResNet``) to ONNX at ``path`` (written atomically).

    Args:
        backbone: module mapping ``(B, 3, T, H, W) -> (Z, c)``.
        path: destination ``.onnx`` file.
        input_shape: shape of the tracing input; the exported axes stay dynamic.
        opset: ONNX opset (>= 17).
    """
    if opset < 17:
        raise ValueError(f"opset must be >= 17, got {opset}")
    if len(input_shape) != 5 or input_shape[1] != 3:
        raise ValueError(f"input_shape must be (B, 3, T, H, W), got {input_shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = backbone.training
    backbone.eval()
    device = next(backbone.parameters()).device
    x = torch.zeros(input_shape, device=device)
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=path.parent)
    os.close(fd)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            torch.onnx.export(backbone, (x,), tmp, dynamo=False, opset_version=opset,
                              input_names=["x"], output_names=["Z", "c"],
                              dynamic_axes=DYNAMIC_AXES, do_constant_folding=True)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
        backbone.train(was_training)
    LOG.info("exported backbone to %s (opset %d, %.1f MB)", path, opset,
             path.stat().st_size / 1e6)
    return path


def compare(reference: np.ndarray, other: np.ndarray) -> dict[str, float]:
    """Max absolute difference between two outputs, also relative to the reference's scale."""
    if reference.shape != other.shape:
        raise ValueError(f"shape mismatch: {reference.shape} vs {other.shape}")
    diff = float(np.max(np.abs(reference.astype(np.float64) - other)))
    scale = float(np.max(np.abs(reference)))
    return {"max_abs": diff, "scale": scale, "relative": diff / max(scale, 1e-12)}


__all__ = ["DYNAMIC_AXES", "EXPORT_VERSION", "OPSET", "compare", "export_backbone"]
