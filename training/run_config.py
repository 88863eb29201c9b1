"""One run's configuration: YAML + ``key=value`` overrides, or the one stored in a checkpoint.

``--resume`` and ``--test-only`` continue what a checkpoint was made with: its stored configuration
(stage, init, out_dir, model, data, ...) is the base and only the overrides given on the command
line change it (they win, and are logged with the stored value they replace). The YAML given with
``--config`` then serves only to locate the checkpoint (``out_dir``).
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import torch

from glimpse_ros.config_loader import load_dataclass, to_dict
from training.config import TrainConfig, apply_override

log = logging.getLogger("training")

# torchvision's ImageNet ResNet-50 files (IMAGENET1K_V1 / IMAGENET1K_V2), inflated in stage 1.
RESNET50_FILES = ("resnet50-0676ba61.pth", "resnet50-11ad3fa6.pth")


def check_pretrained_2d(cfg: TrainConfig) -> None:
    """Refuse to train the paper's ResNet-50 from scratch unless asked to explicitly.

    The paper's numbers need the ImageNet 2D ResNet-50 inflated into the backbone (§6). A
    ``paper``-preset run that starts from neither ``pretrained_2d`` nor ``init`` is refused;
    ``pretrained_2d=none`` opts in to training from scratch.

    Raises:
        ValueError: naming ``pretrained_2d`` and the files torchvision's weights come in.
    """
    if cfg.model_preset != "paper" or cfg.init or cfg.pretrained_2d.strip():
        return
    raise ValueError(
        "pretrained_2d: empty, so the paper's ResNet-50 would be trained from scratch. Give the "
        "torchvision-format ImageNet ResNet-50 file to inflate, e.g. "
        f"pretrained_2d=/path/to/{RESNET50_FILES[0]} (torchvision ResNet50_Weights.IMAGENET1K_V1;"
        f" {RESNET50_FILES[1]} is IMAGENET1K_V2), or init=<stage-1 checkpoint> for stage 2, or "
        "pretrained_2d=none to train from scratch on purpose.")


def stored_config(path: str | Path) -> dict[str, Any] | None:
    """The training configuration stored in a checkpoint, ``None`` when it has none.

    A training checkpoint (``.pt``) stores the whole configuration; an exported model
    (``.safetensors``) only the stage it was trained in. Only the small entries are read: the
    ``.pt`` file is memory-mapped (``weights_only``), the ``.safetensors`` metadata is decoded
    without its tensors.

    Raises:
        ValueError: naming the file when it is missing or unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: checkpoint not found")
    if path.suffix == ".safetensors":
        from glimpse_ros.model.checkpoint import read_metadata
        stage = read_metadata(path)["extra"].get("stage")
        return {"stage": stage} if stage else None
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # torch raises several unrelated types for bad files
        raise ValueError(f"{path}: not a readable training checkpoint ({err})") from err
    stored = ckpt.get("config") if isinstance(ckpt, dict) else None
    return copy.deepcopy(stored) if isinstance(stored, dict) else None


def _lookup(data: dict[str, Any], key: str) -> Any:
    node: Any = data
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def restore_config(stored: dict[str, Any], overrides: list[str], base: TrainConfig | None = None,
                   source: str = "checkpoint") -> tuple[TrainConfig, list[str]]:
    """Apply command-line ``overrides`` to a stored configuration.

    Args:
        stored: the stored configuration (possibly partial, e.g. only ``stage``).
        overrides: ``key=value`` items given on the command line.
        base: configuration filling what ``stored`` lacks (the YAML's); defaults otherwise.
        source: name of the checkpoint, for messages.

    Returns:
        (configuration, one ``key=value (stored: old)`` line per override).

    Raises:
        ValueError: naming ``source`` and the key when the result is invalid.
    """
    data = to_dict(base) if base is not None else {}
    data.update(copy.deepcopy(stored))
    before = copy.deepcopy(data)
    for item in overrides:
        apply_override(data, item)
    try:
        cfg = load_dataclass(TrainConfig, data, where="")
    except ValueError as err:
        raise ValueError(f"configuration stored in {source}: {err}") from err
    wins = []
    for item in overrides:
        key = item.split("=", 1)[0].strip()
        wins.append(f"{key}={_lookup(to_dict(cfg), key)!r} (stored: {_lookup(before, key)!r})")
    return cfg, wins


def resolve_config(cfg: TrainConfig, overrides: list[str], checkpoint: Path,
                   what: str) -> TrainConfig:
    """``cfg`` replaced by the configuration stored in ``checkpoint``, overrides applied.

    Args:
        cfg: the configuration from ``--config`` and the overrides (fills what is not stored).
        overrides: the command line's ``key=value`` items (they win over the stored values).
        checkpoint: the checkpoint resumed or evaluated.
        what: ``resume`` or ``test-only``, for the log.
    """
    stored = stored_config(checkpoint)
    if stored is None:
        log.warning("%s: %s has no stored configuration; using --config and the command line",
                    what, checkpoint)
        return cfg
    restored, wins = restore_config(stored, overrides, base=cfg, source=str(checkpoint))
    log.info("%s: configuration restored from %s (stage %s, init %r, out_dir %s)", what,
             checkpoint, restored.stage, restored.init, restored.out_dir)
    if wins:
        log.info("%s: command-line overrides win over the stored configuration: %s", what,
                 "; ".join(wins))
    return restored
