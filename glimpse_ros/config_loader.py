"""Strict loading of frozen config dataclasses from mappings and YAML files, and back to dicts.

Loading is strict: an unknown key or a value of the wrong type raises ``ValueError`` naming the
offending key (``recognizer.stride: expected an integer``), so configuration errors fail at
start-up instead of deep inside a running node or a training job. The dataclasses themselves live
in :mod:`glimpse_ros.config` and elsewhere (training); this module knows none of them.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml

T = TypeVar("T")


def _check_value(value: Any, annotation: Any, key: str) -> Any:
    """Check ``value`` against a resolved type annotation; return it, converted where lossless."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        for option in args:
            try:
                return _check_value(value, option, key)
            except ValueError:
                pass
        raise ValueError(f"{key}: {value!r} matches none of {args}")
    if annotation is type(None):
        if value is None:
            return None
        raise ValueError(f"{key}: expected null, got {value!r}")
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, Mapping):
            raise ValueError(f"{key}: expected a mapping, got {type(value).__name__}")
        return load_dataclass(annotation, value, where=key)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{key}: expected a list, got {type(value).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_check_value(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ValueError(f"{key}: expected {len(args)} items, got {len(value)}")
        return tuple(_check_value(v, a, f"{key}[{i}]")
                     for i, (v, a) in enumerate(zip(args, value)))
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{key}: expected a list, got {type(value).__name__}")
        return [_check_value(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ValueError(f"{key}: expected a mapping, got {type(value).__name__}")
        return dict(value)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"{key}: expected a boolean, got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ValueError(f"{key}: expected an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ValueError(f"{key}: expected a number, got {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ValueError(f"{key}: expected a string, got {value!r}")
    raise ValueError(f"{key}: unsupported annotation {annotation!r}")


def load_dataclass(cls: type[T], values: Mapping[str, Any] | None, where: str = "") -> T:
    """Build the frozen dataclass ``cls`` from a mapping, strictly.

    Args:
        cls: A dataclass type.
        values: Field values; missing fields take their defaults.
        where: Key prefix used in error messages (e.g. ``"recognizer"``).

    Raises:
        ValueError: on an unknown key, a wrong type or a value the dataclass rejects; the message
            names the key.
    """
    values = dict(values or {})
    prefix = f"{where}." if where else ""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"{prefix}{unknown[0]}: unknown key (known: {', '.join(sorted(names))})")
    kwargs = {name: _check_value(v, hints[name], f"{prefix}{name}") for name, v in values.items()}
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ValueError(f"{where or cls.__name__}: {err}") from err


def load_yaml_config(cls: type[T], path: str | Path, section: str | None = None) -> T:
    """Load ``cls`` from a YAML file, optionally from one top-level section of it."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"{path}: cannot read config: {err}") from err
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: top level must be a mapping")
    if section is not None:
        data = data.get(section, {})
        if not isinstance(data, Mapping):
            raise ValueError(f"{path}: section {section!r} must be a mapping")
    return load_dataclass(cls, data, where=section or "")


def to_dict(obj: Any) -> Any:
    """Convert a (nested) dataclass into plain JSON/YAML-serialisable values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


__all__ = ["load_dataclass", "load_yaml_config", "to_dict"]
