"""ONNX export of the backbone, cached per checkpoint (DESIGN §3).

The graph has one input ``x (B, 3, T, H, W)`` and two outputs ``Z (B, Dz, T, H/32, W/32)`` and
``c (B, T, Dc)``; B, T, H and W are dynamic axes, and engines that profit from a static shape
(OpenVINO, TensorRT) fix it when they compile. Opset 17.

We use PyTorch's TorchScript-based exporter (``dynamo=False``): the backbone is a static chain of
convolutions that it handles exactly, and it needs no extra package (the dynamo exporter needs
``onnxscript``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from glimpse_ros.runtime.model_files import cache_root, file_sha256

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


def module_digest(module: torch.nn.Module) -> str:
    """Hex sha256 over a module's state dict (names, shapes, dtypes and bytes)."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _cached_export(backbone: torch.nn.Module, key: str, cache_dir: str | Path | None,
                   input_shape: tuple[int, ...], step: bool = False) -> Path:
    """Export into ``<cache>/onnx/<key>.onnx`` unless that file already exists.

    ``step``: export the causal backbone's frame step (``export_step``, ``input_shape`` is then
    the frame's ``(B, 3, H, W)``) instead of the clip graph.
    """
    if step:
        from glimpse_ros.runtime.export_step import STEP_EXPORT_VERSION, export_step

        name, version, exporter = "step", STEP_EXPORT_VERSION, export_step
    else:
        name, version, exporter = "backbone", EXPORT_VERSION, export_backbone
    path = cache_root(cache_dir) / "onnx" / f"{name}-{key[:24]}-v{version}.onnx"
    if path.is_file():
        try:  # a damaged cache file (disk error, manual edit) is re-exported, not fatal
            import onnx

            onnx.checker.check_model(str(path))
        except Exception as err:  # noqa: BLE001 - onnx raises several types for bad files
            LOG.warning("cached ONNX export %s is unusable (%s): exporting again", path,
                        str(err).splitlines()[0][:200] if str(err) else type(err).__name__)
        else:
            LOG.info("using cached ONNX export %s", path)
            return path
    return exporter(backbone, path, input_shape)


def export_module_cached(backbone: torch.nn.Module, cache_dir: str | Path | None,
                         input_shape: tuple[int, ...], step: bool = False) -> Path:
    """Export ``backbone`` once per distinct set of weights (keyed by :func:`module_digest`)."""
    return _cached_export(backbone, "m" + module_digest(backbone), cache_dir, input_shape, step)


def onnx_for_checkpoint(checkpoint: str | Path, backbone: torch.nn.Module,
                        cache_dir: str | Path | None, input_shape: tuple[int, ...],
                        step: bool = False) -> Path:
    """Export the backbone of ``checkpoint`` once per checkpoint file (keyed by its sha256)."""
    return _cached_export(backbone, "c" + file_sha256(checkpoint), cache_dir, input_shape, step)


def compare(reference: np.ndarray, other: np.ndarray) -> dict[str, float]:
    """Max absolute difference between two outputs, also relative to the reference's scale."""
    if reference.shape != other.shape:
        raise ValueError(f"shape mismatch: {reference.shape} vs {other.shape}")
    diff = float(np.max(np.abs(reference.astype(np.float64) - other)))
    scale = float(np.max(np.abs(reference)))
    return {"max_abs": diff, "scale": scale, "relative": diff / max(scale, 1e-12)}


__all__ = ["DYNAMIC_AXES", "OPSET", "compare", "export_backbone", "export_module_cached",
           "module_digest", "onnx_for_checkpoint"]
