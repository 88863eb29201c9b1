"""Model bundles: the exported graphs, labels and model config of a checkpoint, checksummed.

A bundle is a directory that the Recognizer runs with ONNX Runtime or OpenVINO without
PyTorch (``model_path`` pointing at the directory)::

    manifest.json       {"format": "glimpse_ros-bundle", "version": 1, "backbone": "step"|"clip",
                         "files": {name: sha256, ...}}
    backbone.onnx       the causal backbone's frame step (runtime/export/step.py), or the clip
                        graph of a symmetric model (runtime/export/clip.py)
    head.onnx           the head step (runtime/export/head.py)
    model_config.json   the ModelConfig fields
    labels.json         the class names, in class order

Loading checks every listed file against its sha256 and the config with the same strict
loader as a checkpoint's, before any engine is built. Written by
``python -m glimpse_ros.export --bundle DIR`` (:mod:`glimpse_ros.runtime.export.bundle`).
Nothing here imports torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from glimpse_ros.config import ModelConfig
from glimpse_ros.config_loader import load_dataclass
from glimpse_ros.runtime.model_files import file_sha256

FORMAT, VERSION = "glimpse_ros-bundle", 1
MANIFEST = "manifest.json"
FILES = ("backbone.onnx", "head.onnx", "model_config.json", "labels.json")


@dataclass(frozen=True)
class Bundle:
    """A loaded bundle: paths of its graphs, the model config and the labels."""

    path: Path
    config: ModelConfig
    labels: list[str]
    backbone_onnx: Path
    head_onnx: Path


def is_bundle(path: str | Path) -> bool:
    """True when ``path`` is a directory holding a bundle manifest."""
    return Path(path).is_dir() and (Path(path) / MANIFEST).is_file()


def load_bundle(path: str | Path) -> Bundle:
    """Verify and load the bundle in directory ``path``.

    Raises:
        ValueError: no or bad manifest, a missing file, a checksum mismatch, a bad config, or
            labels that do not match the config's class count (each naming the file).
    """
    root = Path(path)
    try:
        manifest = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{root / MANIFEST}: not a readable bundle manifest ({err})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{root / MANIFEST}: not a {FORMAT} manifest")
    if manifest.get("version") != VERSION:
        raise ValueError(f"{root / MANIFEST}: bundle version {manifest.get('version')!r}, "
                         f"this runtime reads version {VERSION}")
    files = manifest.get("files", {})
    for name in FILES:
        if name not in files:
            raise ValueError(f"{root / MANIFEST}: lists no {name}")
        if not (root / name).is_file():
            raise ValueError(f"{root / name}: missing from the bundle")
        if file_sha256(root / name) != files[name]:
            raise ValueError(f"{root / name}: sha256 does not match the manifest (damaged or "
                             "edited file)")
    config = load_dataclass(ModelConfig, json.loads((root / "model_config.json").read_text()),
                            where="model_config")
    labels = json.loads((root / "labels.json").read_text())
    if not isinstance(labels, list) or len(labels) != config.num_classes:
        raise ValueError(f"{root / 'labels.json'}: expected a list of {config.num_classes} "
                         "class names")
    kind = "step" if config.causal else "clip"
    if manifest.get("backbone") != kind:
        raise ValueError(f"{root / MANIFEST}: backbone {manifest.get('backbone')!r}, but the "
                         f"model is {config.temporal_padding} (needs {kind!r})")
    return Bundle(path=root, config=config, labels=[str(x) for x in labels],
                  backbone_onnx=root / "backbone.onnx", head_onnx=root / "head.onnx")


def write_manifest(root: Path, backbone: str) -> Path:
    """Write ``manifest.json`` over the bundle files already in ``root``."""
    manifest = {"format": FORMAT, "version": VERSION, "backbone": backbone,
                "files": {name: file_sha256(root / name) for name in FILES}}
    path = root / MANIFEST
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path


__all__ = ["Bundle", "FILES", "FORMAT", "MANIFEST", "VERSION", "is_bundle", "load_bundle",
           "write_manifest"]
