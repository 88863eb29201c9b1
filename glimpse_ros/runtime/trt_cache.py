"""TensorRT engine cache: the key, the on-disk layout and the load / build / rebuild decision.

A serialized TensorRT engine is only valid for the exact network, TensorRT version, GPU model and
build settings it was made with (DESIGN §3). The cache key therefore hashes:

- sha256 of the ONNX file's bytes,
- the TensorRT version,
- the GPU name and compute capability,
- the precision (fp16 / fp32),
- the input shape of the optimisation profile.

Files: ``<cache>/tensorrt/<key>.engine`` plus ``<key>.json`` (the key's fields, for people).
Writes are atomic (temporary file + rename), so a crash mid-write never leaves a truncated engine
under the final name. A cached engine that fails to deserialize (corrupt file, or a
TensorRT/driver change the key did not capture) is deleted and rebuilt. Nothing here imports
tensorrt: the TensorRT engine passes ``deserialize`` / ``build`` callables, and tests pass fakes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Generic, Optional, TypeVar

from glimpse_ros.runtime.model_files import cache_root

LOG = logging.getLogger("glimpse_ros.runtime")
E = TypeVar("E")


@dataclass(frozen=True)
class TrtTarget:
    """Everything besides the ONNX file that makes a TensorRT engine valid or not."""

    tensorrt_version: str
    gpu_name: str
    compute_capability: tuple[int, int]
    precision: str
    input_shape: tuple[int, ...]


def engine_key(onnx_sha256: str, target: TrtTarget) -> str:
    """Hex sha256 over the ONNX digest and the target, in a canonical JSON encoding."""
    payload = {"onnx_sha256": onnx_sha256, **asdict(target)}
    payload["compute_capability"] = list(target.compute_capability)
    payload["input_shape"] = list(target.input_shape)
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class CacheResult(Generic[E]):
    """An engine and how it was obtained: ``loaded``, ``built`` (missing) or ``rebuilt``."""

    engine: E
    decision: str
    reason: str
    path: Path


class EngineCache:
    """Directory of serialized engines addressed by :func:`engine_key`."""

    def __init__(self, cache_dir: str | Path | None) -> None:
        """Use ``<cache_dir>/tensorrt`` (created if needed)."""
        self.root = cache_root(cache_dir) / "tensorrt"
        self.root.mkdir(parents=True, exist_ok=True)

    def engine_path(self, key: str) -> Path:
        """Path of the serialized engine for ``key``."""
        return self.root / f"{key}.engine"

    def lookup(self, key: str, deserialize: Callable[[bytes], Optional[E]]
               ) -> tuple[Optional[E], str, str]:
        """Try the cached engine; return ``(engine or None, decision, reason)``.

        ``decision`` is ``load`` (usable), ``build`` (no file) or ``rebuild`` (the file exists
        but does not deserialize; it is deleted).
        """
        path = self.engine_path(key)
        if not path.is_file():
            return None, "build", f"no cached engine {path.name}"
        try:
            engine = deserialize(path.read_bytes())
            reason = "" if engine is not None else "deserializer returned nothing"
        except Exception as err:  # noqa: BLE001 - any failure means: rebuild
            engine, reason = None, f"{type(err).__name__}: {err}"
        if engine is None:
            LOG.warning("cached TensorRT engine %s is unusable (%s): rebuilding", path, reason)
            path.unlink(missing_ok=True)
            return None, "rebuild", f"cached engine failed to deserialize ({reason})"
        return engine, "load", f"cached engine {path.name}"

    def store(self, key: str, blob: bytes, info: dict) -> Path:
        """Write ``blob`` (and ``info`` as JSON) for ``key`` atomically; return the engine path."""
        path = self.engine_path(key)
        for target, data in ((path, blob), (path.with_suffix(".json"),
                                            json.dumps(info, indent=2, default=list).encode())):
            fd, tmp = tempfile.mkstemp(dir=self.root, suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, target)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        return path

    def load_or_build(self, key: str, deserialize: Callable[[bytes], Optional[E]],
                      build: Callable[[], bytes], info: dict) -> CacheResult[E]:
        """Return the cached engine, or build, store and deserialize a new one.

        Raises:
            RuntimeError: when a freshly built engine does not deserialize either.
        """
        engine, decision, reason = self.lookup(key, deserialize)
        if engine is not None:
            LOG.info("TensorRT: loaded %s", reason)
            return CacheResult(engine, "loaded", reason, self.engine_path(key))
        LOG.info("TensorRT: building engine (%s)", reason)
        path = self.store(key, build(), info)
        engine = deserialize(path.read_bytes())
        if engine is None:
            raise RuntimeError(f"{path}: freshly built TensorRT engine does not deserialize")
        return CacheResult(engine, "built" if decision == "build" else "rebuilt", reason, path)


__all__ = ["CacheResult", "EngineCache", "TrtTarget", "engine_key"]
