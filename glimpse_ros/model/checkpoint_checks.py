"""Checks of a safetensors model file against its own config, before anything is allocated.

A model file is untrusted input: its metadata announces a config that the loader would otherwise
build straight away (a ``glimpse_hidden`` of 20000 allocates gigabytes before a shape is ever
compared). The order here keeps memory bounded at every step:

1. the config's fields: types, finite, within :class:`~glimpse_ros.config.ModelConfig`'s bounds;
2. the tensors the config implies, from the model built on PyTorch's ``meta`` device (shapes and
   dtypes, no storage), their total size against :data:`MAX_MODEL_BYTES`;
3. the file's header: the same names, shapes and dtypes, and a data section exactly as large as
   those tensors (file size = 8 + header + data);
4. only then the weights are read, and every floating tensor must be finite and within
   :data:`MAX_ABS_WEIGHT`.

Every error is a ``ValueError`` naming the file and the field or tensor.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import torch

from glimpse_ros.config import ModelConfig

# 4 GiB of parameters: 14x the ResNet-50 Glimpse Clouds model (74 M parameters, 296 MB).
MAX_MODEL_BYTES = 4 << 30
# Trained weights and batch-norm statistics stay far below this (the demo model's largest is
# 19); a larger value means a diverged or tampered file, and products of such weights overflow.
MAX_ABS_WEIGHT = 1e6
# safetensors' dtype names -> torch dtypes (those a GlimpseClouds state dict can hold).
_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
           "F64": torch.float64, "I64": torch.int64, "I32": torch.int32}


def expected_tensors(cfg: ModelConfig) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Names, shapes and dtypes of the state dict ``cfg`` implies, without allocating it."""
    from glimpse_ros.model.glimpse_clouds import GlimpseClouds

    with torch.device("meta"):
        model = GlimpseClouds(cfg)
    return {k: (tuple(v.shape), v.dtype) for k, v in model.state_dict().items()}


def tensor_bytes(spec: dict[str, tuple[tuple[int, ...], torch.dtype]]) -> int:
    """Bytes of the tensors described by ``spec`` (name -> (shape, dtype))."""
    total = 0
    for shape, dtype in spec.values():
        numel = 1
        for n in shape:
            numel *= n
        total += numel * torch.empty((), dtype=dtype, device="meta").element_size()
    return total


def read_header(path: Path) -> tuple[dict[str, tuple[tuple[int, ...], str]], int]:
    """Tensor names -> (shape, safetensors dtype) from the file's JSON header, and data bytes.

    Raises:
        ValueError: when the header is unreadable or the data section is not exactly as large as
            the tensors the header lists.
    """
    size = path.stat().st_size
    with path.open("rb") as fh:
        raw = fh.read(8)
        if len(raw) < 8:
            raise ValueError(f"{path}: file of {size} bytes has no safetensors header")
        (length,) = struct.unpack("<Q", raw)
        if length > min(size - 8, 100 << 20):  # safetensors' own header limit is 100 MB
            raise ValueError(f"{path}: header length {length} does not fit the file")
        try:
            header = json.loads(fh.read(length))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path}: unreadable safetensors header ({err})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: safetensors header is not a mapping")
    tensors = {}
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            shape, dtype = tuple(int(n) for n in info["shape"]), str(info["dtype"])
            end = max(end, int(info["data_offsets"][1]))
        except (KeyError, TypeError, ValueError, IndexError):
            raise ValueError(f"{path}: header entry of {name} is malformed") from None
        tensors[name] = (shape, dtype)
    if 8 + length + end != size:
        raise ValueError(f"{path}: file is {size} bytes, its header describes "
                         f"{8 + length + end} (truncated or padded file)")
    return tensors, end


def check_file_matches(path: Path, cfg: ModelConfig) -> None:
    """Compare the file's tensors with what ``cfg`` implies (steps 2 and 3 of the module doc).

    Raises:
        ValueError: naming the file and the first missing / unexpected / mismatched tensor, or
            a config implying more than MAX_MODEL_BYTES of parameters.
    """
    expected = expected_tensors(cfg)
    need = tensor_bytes(expected)
    if need > MAX_MODEL_BYTES:
        raise ValueError(f"{path}: model_config implies {need / 2**30:.1f} GiB of parameters, "
                         f"over the limit of {MAX_MODEL_BYTES / 2**30:.0f} GiB")
    found, data_bytes = read_header(path)
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    if missing or unexpected:
        raise ValueError(f"{path}: checkpoint does not match its config: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    for key, (shape, dtype) in expected.items():
        got_shape, got_dtype = found[key]
        if got_shape != shape:
            raise ValueError(f"{path}: {key} has shape {got_shape}, the config needs {shape}")
        if _DTYPES.get(got_dtype) != dtype:
            raise ValueError(f"{path}: {key} has dtype {got_dtype}, the config needs {dtype}")
    if data_bytes != need:
        raise ValueError(f"{path}: data section of {data_bytes} bytes, the config's tensors "
                         f"need {need}")


def check_weights_finite(path: Path, state: dict[str, torch.Tensor]) -> None:
    """Refuse NaN, Inf and magnitudes above MAX_ABS_WEIGHT in floating tensors (step 4).

    Raises:
        ValueError: naming the file and the tensor.
    """
    for key, tensor in state.items():
        if not tensor.is_floating_point() or tensor.numel() == 0:
            continue
        if not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"{path}: {key} holds non-finite values (NaN or Inf)")
        peak = float(tensor.abs().max())
        if peak > MAX_ABS_WEIGHT:
            raise ValueError(f"{path}: {key} holds |w| = {peak:.3g}, over the sane bound of "
                             f"{MAX_ABS_WEIGHT:g}")


__all__ = ["MAX_ABS_WEIGHT", "MAX_MODEL_BYTES", "check_file_matches", "check_weights_finite",
           "expected_tensors", "read_header", "tensor_bytes"]
