"""Self-describing model files: one safetensors file holding weights, config and label names.

A deployed model must never be unpickled (a pickle can run arbitrary code), so inference
checkpoints are safetensors files. Their string metadata carries everything needed to rebuild the
model:

- ``format``: ``"glimpse_ros/1"``
- ``model_config``: JSON of :class:`~glimpse_ros.config.ModelConfig`
- ``labels``: JSON list of class names (length = ``num_classes``)
- ``extra``: JSON of free-form provenance (training command, data seed, metrics, git revision)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from glimpse_ros.config import ModelConfig
from glimpse_ros.config_loader import load_dataclass, to_dict
from glimpse_ros.model.checkpoint_checks import check_file_matches, check_weights_finite
from glimpse_ros.model.glimpse_clouds import GlimpseClouds

FORMAT = "glimpse_ros/1"
# ModelConfig fields added after model files were first written, with the value that reproduces
# what a file without the field computed. A missing key otherwise takes the dataclass default,
# which is what new models get (the training YAML files follow the defaults, these files do not).
LEGACY_MODEL_FIELDS = {"glimpse_border": "zeros", "glimpse_locator": "context"}


@dataclass
class LoadedModel:
    """A model rebuilt from a checkpoint file, in eval mode."""

    model: GlimpseClouds
    config: ModelConfig
    labels: list[str]
    metadata: dict[str, Any]


def save_checkpoint(path: str | Path, model: GlimpseClouds, labels: list[str],
                    extra: dict[str, Any] | None = None) -> Path:
    """Write ``model`` with its config and label names to one ``.safetensors`` file.

    Raises:
        ValueError: when the number of labels differs from the model's number of classes.
    """
    path = Path(path)
    cfg = model.config
    if len(labels) != cfg.num_classes:
        raise ValueError(f"{path}: {len(labels)} labels for a model with "
                         f"{cfg.num_classes} classes")
    # safetensors refuses shared or non-contiguous storage: store independent contiguous copies.
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    metadata = {"format": FORMAT, "model_config": json.dumps(to_dict(cfg)),
                "labels": json.dumps(list(labels)), "extra": json.dumps(extra or {})}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata)
    return path


def read_metadata(path: str | Path) -> dict[str, Any]:
    """Read and decode a checkpoint's metadata without loading its tensors."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: checkpoint file not found")
    with path.open("rb") as fh:
        head = fh.read(9)
    # A pickle (torch.save, .pth) starts with the PROTO opcode 0x80, a zip (torch.save >= 1.6)
    # with "PK". Neither is ever opened: unpickling can execute arbitrary code. A safetensors file
    # starts with its header length (u64, little endian; its low byte can be 0x80 too) followed by
    # the JSON header's "{": such a file goes to the safetensors parser, which never unpickles.
    safetensors_like = head[8:9] == b"{"
    if not safetensors_like and (head[:1] == b"\x80" or head[:2] == b"PK"):
        raise ValueError(f"{path}: looks like a pickle/torch.save file; refusing to unpickle it. "
                         f"Convert it with glimpse_ros.model.checkpoint.save_checkpoint")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"{path}: not a readable safetensors checkpoint ({err})") from err
    if raw.get("format") != FORMAT:
        raise ValueError(f"{path}: metadata format is {raw.get('format')!r}, expected {FORMAT!r}")
    meta = {}
    for key, kind, default in (("model_config", dict, None), ("labels", list, None),
                               ("extra", dict, "{}")):
        text = raw.get(key, default)
        if text is None:
            raise ValueError(f"{path}: corrupt checkpoint metadata: no {key}")
        try:
            value = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: corrupt checkpoint metadata: {key}: {err}") from None
        if not isinstance(value, kind):
            raise ValueError(f"{path}: corrupt checkpoint metadata: {key} must be a JSON "
                             f"{'object' if kind is dict else 'list'}, got "
                             f"{type(value).__name__}")
        meta[key] = value
    if not all(isinstance(x, str) for x in meta["labels"]):
        raise ValueError(f"{path}: corrupt checkpoint metadata: labels must be strings")
    return meta


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild a :class:`GlimpseClouds` from a safetensors checkpoint (no unpickling).

    Fields missing from the stored config take :data:`LEGACY_MODEL_FIELDS` where listed (files
    written before the field existed), else the defaults.

    Everything is checked before it is allocated (``checkpoint_checks``): the config's types and
    bounds, the tensor shapes and sizes in the file header against the config, then the weights
    for NaN/Inf/huge values.

    Raises:
        ValueError: naming the file and the problem: missing file, not safetensors (e.g. a pickle),
            bad metadata, a config field out of bounds, missing/unexpected tensors, shape, dtype
            or size mismatches, non-finite weights.
    """
    path = Path(path)
    meta = read_metadata(path)
    try:
        cfg = load_dataclass(ModelConfig, {**LEGACY_MODEL_FIELDS, **meta["model_config"]},
                             where="model_config")
    except ValueError as err:  # the field is named in the message; add the file
        raise ValueError(f"{path}: {err}") from None
    labels = meta["labels"]
    if len(labels) != cfg.num_classes:
        raise ValueError(f"{path}: {len(labels)} labels for a model with {cfg.num_classes} "
                         f"classes")
    check_file_matches(path, cfg)
    state = load_file(str(path), device=str(device))
    check_weights_finite(path, state)
    model = GlimpseClouds(cfg)
    model.load_state_dict(state)
    model.to(device).eval()
    return LoadedModel(model=model, config=cfg, labels=[str(x) for x in labels],
                       metadata=meta["extra"])
