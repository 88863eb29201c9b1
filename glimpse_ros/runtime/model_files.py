"""Where model files live: the shipped demo model, the engine cache, and file hashing."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

PACKAGE = "glimpse_ros"
DEMO_MODEL = Path("models") / "demo" / "glimpse_clouds_small_synthetic.safetensors"


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes (streamed, so large files do not need to fit in memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def share_dirs() -> list[Path]:
    """Candidate roots holding ``models/``: the source tree, then installed share directories."""
    roots = [Path(__file__).resolve().parents[2]]  # source checkout / editable install
    try:
        from ament_index_python.packages import get_package_share_directory

        roots.append(Path(get_package_share_directory(PACKAGE)))
    except Exception:  # noqa: BLE001 - not a ROS install, or the package is not indexed
        pass
    roots.append(Path(sys.prefix) / "share" / PACKAGE)  # pip install (setup.py data_files)
    return roots


def default_model_path() -> Path:
    """Locate the shipped demo model (``models/demo/...``).

    Raises:
        ValueError: listing the places searched when the file is in none of them.
    """
    candidates = [root / DEMO_MODEL for root in share_dirs()]
    for path in candidates:
        if path.is_file():
            return path
    raise ValueError("demo model not found; looked in " + ", ".join(str(p) for p in candidates)
                     + " (set model_path to a checkpoint file)")


def resolve_model_path(model_path: str | Path | None) -> Path:
    """Return the model to load: ``model_path`` or, when empty, the shipped demo model.

    ``model_path`` is a checkpoint file or a model bundle directory (one holding a
    ``manifest.json``, see :mod:`glimpse_ros.runtime.bundle`).
    """
    if model_path is None or str(model_path) == "":
        return default_model_path()
    path = Path(os.path.expanduser(str(model_path)))
    if path.is_dir() and (path / "manifest.json").is_file():
        return path
    if not path.is_file():
        raise ValueError(f"{path}: model file not found" + (
            " (a directory, but not a model bundle: no manifest.json)" if path.is_dir() else ""))
    return path


def cache_root(cache_dir: str | Path | None) -> Path:
    """Expand ``cache_dir`` (None = ``~/.cache/glimpse_ros/engines``) and create it."""
    root = Path(os.path.expanduser(str(cache_dir or "~/.cache/glimpse_ros/engines")))
    root.mkdir(parents=True, exist_ok=True)
    return root
