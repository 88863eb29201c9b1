"""Write a model bundle (:mod:`glimpse_ros.runtime.bundle`) from a checkpoint (needs torch)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from glimpse_ros.config_loader import to_dict
from glimpse_ros.runtime.bundle import MANIFEST, write_manifest
from glimpse_ros.runtime.export.clip import export_backbone
from glimpse_ros.runtime.export.head import export_head
from glimpse_ros.runtime.export.step import export_step

LOG = logging.getLogger("glimpse_ros.runtime")


def write_bundle(checkpoint: str | Path, out_dir: str | Path) -> Path:
    """Export ``checkpoint`` into the bundle directory ``out_dir`` (created; files replaced).

    A causal model gets its frame step as ``backbone.onnx``, a symmetric one its clip graph
    (``(1, 3, T, S, S)``); both get the head step. The manifest is written last, so a bundle
    interrupted half-way has none and does not load.

    Raises:
        ValueError: a bad checkpoint, or a head that cannot be exported (random glimpses).
    """
    from glimpse_ros.model.checkpoint import load_checkpoint

    loaded = load_checkpoint(checkpoint)
    cfg, model = loaded.config, loaded.model
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    (root / MANIFEST).unlink(missing_ok=True)
    s = cfg.crop_size
    if cfg.causal:
        export_step(model.backbone, root / "backbone.onnx", (1, 3, s, s))
    else:
        export_backbone(model.backbone, root / "backbone.onnx", (1, 3, cfg.frames, s, s))
    export_head(model.head, root / "head.onnx", model.backbone.feature_size(s, s), (s, s))
    (root / "model_config.json").write_text(json.dumps(to_dict(cfg), indent=2) + "\n")
    (root / "labels.json").write_text(json.dumps(list(loaded.labels), indent=1) + "\n")
    write_manifest(root, "step" if cfg.causal else "clip")
    LOG.info("wrote model bundle %s (%s backbone, %d classes)", root,
             "step" if cfg.causal else "clip", cfg.num_classes)
    return root


__all__ = ["write_bundle"]
