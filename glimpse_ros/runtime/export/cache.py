"""ONNX exports cached on disk, keyed by the weights (module digest) or the checkpoint's sha256.

Clip graphs (:mod:`~glimpse_ros.runtime.export.clip`), causal step graphs
(:mod:`~glimpse_ros.runtime.export.step`) and head step graphs
(:mod:`~glimpse_ros.runtime.export.head`) are written once into ``<cache>/onnx/`` and reused; a
damaged cached file is exported again. Each kind has its own file name prefix and export
version, so a change of one exporter never reuses the others' files.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Callable

import torch

from glimpse_ros.runtime.export.clip import EXPORT_VERSION, export_backbone
from glimpse_ros.runtime.export.head import HEAD_EXPORT_VERSION, export_head
from glimpse_ros.runtime.export.step import STEP_EXPORT_VERSION, export_step
from glimpse_ros.runtime.model_files import cache_root, file_sha256

LOG = logging.getLogger("glimpse_ros.runtime")


def module_digest(module: torch.nn.Module) -> str:
    """Hex sha256 over a module's state dict (names, shapes, dtypes and bytes)."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _cached(name: str, version: int, key: str, cache_dir: str | Path | None,
            export: Callable[[Path], Path]) -> Path:
    """``<cache>/onnx/<name>-<key>-v<version>.onnx``, written by ``export(path)`` if missing."""
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
    return export(path)


def _cached_export(backbone: torch.nn.Module, key: str, cache_dir: str | Path | None,
                   input_shape: tuple[int, ...], step: bool = False) -> Path:
    """Export into ``<cache>/onnx/`` unless that file already exists.

    ``step``: export the causal backbone's frame step (``export_step``, ``input_shape`` is then
    the frame's ``(B, 3, H, W)``) instead of the clip graph.
    """
    if step:
        name, version, exporter = "step", STEP_EXPORT_VERSION, export_step
    else:
        name, version, exporter = "backbone", EXPORT_VERSION, export_backbone
    return _cached(name, version, key, cache_dir,
                   lambda path: exporter(backbone, path, input_shape))


def export_module_cached(backbone: torch.nn.Module, cache_dir: str | Path | None,
                         input_shape: tuple[int, ...], step: bool = False) -> Path:
    """Export ``backbone`` once per distinct set of weights (keyed by :func:`module_digest`)."""
    return _cached_export(backbone, "m" + module_digest(backbone), cache_dir, input_shape, step)


def onnx_for_checkpoint(checkpoint: str | Path, backbone: torch.nn.Module,
                        cache_dir: str | Path | None, input_shape: tuple[int, ...],
                        step: bool = False) -> Path:
    """Export the backbone of ``checkpoint`` once per checkpoint file (keyed by its sha256)."""
    return _cached_export(backbone, "c" + file_sha256(checkpoint), cache_dir, input_shape, step)


def head_onnx_for_checkpoint(checkpoint: str | Path, head: torch.nn.Module,
                             cache_dir: str | Path | None, feature_size: tuple[int, int],
                             input_size: tuple[int, int]) -> Path:
    """Export the fp32 head step of ``checkpoint`` once per checkpoint file and map size.

    Args:
        checkpoint: the model file (the key is its sha256).
        head: its fp32 ``GlimpseCloudsHead`` (not an int8 copy).
        cache_dir: engine cache directory (None: the default).
        feature_size: ``(h, w)`` of the layer4 map.
        input_size: ``(H, W)`` of the input crop.
    """
    name = f"head{feature_size[0]}x{feature_size[1]}"
    return _cached(name, HEAD_EXPORT_VERSION, "c" + file_sha256(checkpoint), cache_dir,
                   lambda path: export_head(head, path, feature_size, input_size))


__all__ = ["export_module_cached", "head_onnx_for_checkpoint", "module_digest",
           "onnx_for_checkpoint"]
