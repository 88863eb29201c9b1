"""TensorRT engine cache: key, invalidation and rebuild decision, without tensorrt installed."""

from __future__ import annotations

import dataclasses

import pytest

from glimpse_ros.runtime.model_files import file_sha256
from glimpse_ros.runtime.trt_cache import EngineCache, TrtTarget, engine_key

TARGET = TrtTarget(tensorrt_version="10.9.0", gpu_name="NVIDIA H100 80GB HBM3",
                   compute_capability=(9, 0), precision="fp16", input_shape=(1, 3, 8, 224, 224))
MAGIC = b"ENGINE:"


def fake_deserialize(blob: bytes):
    """Stand-in for IRuntime.deserialize_cuda_engine: None for anything not built by fake_build."""
    return blob.decode() if blob.startswith(MAGIC) else None


def test_key_changes_with_onnx_content(tmp_path):
    """Changing one byte of the ONNX file changes the key."""
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    a.write_bytes(b"onnx model v1")
    b.write_bytes(b"onnx model v2")
    assert engine_key(file_sha256(a), TARGET) != engine_key(file_sha256(b), TARGET)
    assert engine_key(file_sha256(a), TARGET) == engine_key(file_sha256(a), TARGET)


@pytest.mark.parametrize("field, value", [("tensorrt_version", "10.10.0"),
                                          ("gpu_name", "NVIDIA RTX 4090"),
                                          ("compute_capability", (8, 9)),
                                          ("precision", "fp32"),
                                          ("input_shape", (1, 3, 8, 112, 112))])
def test_key_covers_every_target_field(field, value):
    """Each of TensorRT version, GPU, capability, precision and shape is part of the key."""
    changed = dataclasses.replace(TARGET, **{field: value})
    assert engine_key("0" * 64, changed) != engine_key("0" * 64, TARGET)


def test_build_load_and_rebuild_decisions(tmp_path):
    """Missing -> built; present -> loaded; corrupt -> deleted, rebuilt and replaced."""
    cache = EngineCache(tmp_path)
    key = engine_key("f" * 64, TARGET)
    builds = []

    def fake_build() -> bytes:
        builds.append(1)
        return MAGIC + b"engine"

    first = cache.load_or_build(key, fake_deserialize, fake_build, {"k": key})
    assert first.decision == "built" and len(builds) == 1
    assert first.path.with_suffix(".json").is_file()
    second = cache.load_or_build(key, fake_deserialize, fake_build, {"k": key})
    assert second.decision == "loaded" and len(builds) == 1

    first.path.write_bytes(b"\x00garbage from a crashed write or another TensorRT")
    engine, decision, reason = cache.lookup(key, fake_deserialize)
    assert engine is None and decision == "rebuild" and "deserialize" in reason
    assert not first.path.exists()  # the unusable file is removed

    first.path.write_bytes(b"corrupt again")
    third = cache.load_or_build(key, fake_deserialize, fake_build, {"k": key})
    assert third.decision == "rebuilt" and len(builds) == 2
    assert first.path.read_bytes() == MAGIC + b"engine"


def test_deserializer_exception_means_rebuild(tmp_path):
    """A deserializer that raises (as TensorRT does on version mismatch) triggers a rebuild."""
    cache = EngineCache(tmp_path)
    key = engine_key("e" * 64, TARGET)
    cache.store(key, b"stale", {})

    def raising(blob: bytes):
        raise RuntimeError("Serialization assertion: version tag mismatch")

    assert cache.lookup(key, raising)[1] == "rebuild"


def test_build_that_does_not_deserialize_raises(tmp_path):
    """A freshly built engine that cannot be loaded is an error, not an endless rebuild loop."""
    cache = EngineCache(tmp_path)
    with pytest.raises(RuntimeError, match="does not deserialize"):
        cache.load_or_build("k" * 64, fake_deserialize, lambda: b"bad", {})
