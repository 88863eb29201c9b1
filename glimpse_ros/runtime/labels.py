"""Class-name files: plain text (one per line), JSON or YAML."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml


def _from_data(data: Any, path: Path) -> list[str]:
    """Accept a list, ``{"labels": [...]}`` or an ``{index: name}`` mapping."""
    if isinstance(data, dict) and "labels" in data:
        data = data["labels"]
    if isinstance(data, dict):
        try:
            items = sorted((int(k), str(v)) for k, v in data.items())
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path}: label mapping keys must be class indices") from err
        if [k for k, _ in items] != list(range(len(items))):
            raise ValueError(f"{path}: label indices must be 0..{len(items) - 1} without gaps")
        return [v for _, v in items]
    if isinstance(data, list):
        return [str(v) for v in data]
    raise ValueError(f"{path}: expected a list of labels, got {type(data).__name__}")


def load_labels(path: str | Path, num_classes: int | None = None) -> list[str]:
    """Read class names from ``path``.

    ``.json`` / ``.yaml`` / ``.yml``: a list, ``{"labels": [...]}`` or ``{index: name}``; any other
    suffix: one label per line (blank lines and ``#`` comments skipped).

    Raises:
        ValueError: naming the file when it cannot be read or (with ``num_classes``) holds a
            different number of labels than the model has classes.
    """
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ValueError(f"{path}: cannot read labels file ({err})") from err
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            labels = _from_data(json.loads(text), path)
        elif suffix in (".yaml", ".yml"):
            labels = _from_data(yaml.safe_load(text), path)
        else:
            labels = [ln.strip() for ln in text.splitlines()
                      if ln.strip() and not ln.strip().startswith("#")]
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise ValueError(f"{path}: cannot parse labels file ({err})") from err
    if num_classes is not None and len(labels) != num_classes:
        raise ValueError(f"{path}: {len(labels)} labels, but the model has {num_classes} classes")
    return labels
