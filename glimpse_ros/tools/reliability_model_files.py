"""Hostile model files for the reliability checks: each must be refused before it is used.

Owns how they are made from a small valid checkpoint: pickle payloads under model-file names,
metadata that disagrees with the tensors, configs out of bounds or of the wrong JSON type,
NaN / Inf / huge weights, a tensor of the wrong dtype, truncated and padded files.
"""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path
from typing import Any

from glimpse_ros.tools.reliability_harness import make_checkpoint


def malicious_pickles(tmp: Path) -> tuple[dict[str, Path], Path]:
    """Write pickle-based model files that create ``marker`` when unpickled.

    Returns ``{kind: path}`` (a raw pickle named .safetensors, a torch.save zip named .pt and
    .pth) and the marker path.
    """
    import torch

    marker = tmp / "PWNED"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    files = {"raw_pickle.safetensors": tmp / "evil.safetensors", "torch_zip.pt": tmp / "evil.pt",
             "torch_zip.pth": tmp / "evil.pth"}
    files["raw_pickle.safetensors"].write_bytes(pickle.dumps({"model": Payload()}))
    torch.save({"model": Payload()}, files["torch_zip.pt"])
    torch.save({"state_dict": Payload()}, files["torch_zip.pth"])
    return files, marker


def mismatched_checkpoint(tmp: Path) -> Path:
    """A safetensors file whose metadata announces 5 classes while its tensors have 4."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    good = make_checkpoint(tmp / "four.safetensors", num_classes=4, crop_size=32, resize_size=40)
    with safe_open(str(good), framework="pt") as f:
        meta = dict(f.metadata())
    cfg = json.loads(meta["model_config"])
    cfg["num_classes"] = 5
    meta["model_config"] = json.dumps(cfg)
    meta["labels"] = json.dumps([f"c{i}" for i in range(5)])
    path = tmp / "mismatched.safetensors"
    save_file(load_file(str(good)), str(path), metadata=meta)
    return path


# name -> (model_config changes, or a whole replacement when not a dict; field named in the error)
HOSTILE_CONFIGS: dict[str, tuple[Any, str]] = {
    "glimpse_hidden_20000": ({"glimpse_hidden": 20000}, "glimpse_hidden"),
    "worker_hidden_30000": ({"worker_hidden": 30000}, "worker_hidden"),
    "backbone_width_1e5": ({"backbone_width": 1e5}, "backbone_width"),
    "backbone_width_100000": ({"backbone_width": 100000}, "backbone_width"),
    "memory_slots_1e8": ({"memory_slots": 100_000_000}, "memory_slots"),
    "backbone_layers_100000": ({"backbone_layers": [100000, 1, 1, 1]}, "backbone_layers"),
    "crop_size_huge": ({"crop_size": 1 << 20, "resize_size": 1 << 20}, "crop_size"),
    "frames_huge": ({"frames": 1 << 30}, "frames"),
    "memory_decay_nan": ({"memory_decay": math.nan}, "memory_decay"),
    "config_is_list": ([1, 2, 3], "model_config"),
    "config_is_int": (7, "model_config"),
}
# name -> value written into one weight tensor
HOSTILE_WEIGHTS: dict[str, float] = {"nan_weight": math.nan, "inf_weight": math.inf,
                                     "huge_weight": 1e38}


def hostile_model_files(tmp: Path) -> dict[str, tuple[Path, str]]:
    """Model files that must be refused before use: ``{case: (path, field named)}``.

    Configs out of bounds or of the wrong JSON type (with the small model's tensors), NaN / Inf /
    1e38 weights, a tensor of the wrong dtype, a truncated and a padded file.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    good = make_checkpoint(tmp / "good.safetensors", num_classes=4, crop_size=32, resize_size=40)
    with safe_open(str(good), framework="pt") as f:
        meta = dict(f.metadata())
    tensors = load_file(str(good))
    out: dict[str, tuple[Path, str]] = {}
    for name, (change, field) in HOSTILE_CONFIGS.items():
        cfg = json.loads(meta["model_config"])
        cfg = dict(cfg, **change) if isinstance(change, dict) else change
        path = tmp / f"{name}.safetensors"
        save_file(tensors, str(path), metadata=dict(meta, model_config=json.dumps(cfg)))
        out[name] = (path, field)
    key = "head.workers.classifiers.0.weight"  # NaN here would reach every output
    for name, value in HOSTILE_WEIGHTS.items():
        bad = dict(tensors)
        bad[key] = bad[key].clone()
        bad[key].view(-1)[0] = value
        path = tmp / f"{name}.safetensors"
        save_file(bad, str(path), metadata=meta)
        out[name] = (path, key)
    wrong = dict(tensors, **{key: tensors[key].double()})
    save_file(wrong, str(tmp / "float64_tensor.safetensors"), metadata=meta)
    out["float64_tensor"] = (tmp / "float64_tensor.safetensors", key)
    data = good.read_bytes()
    (tmp / "truncated.safetensors").write_bytes(data[:-100])
    (tmp / "padded.safetensors").write_bytes(data + bytes(100))
    out["truncated"] = (tmp / "truncated.safetensors", "safetensors")
    out["padded"] = (tmp / "padded.safetensors", "safetensors")
    return out


__all__ = ["HOSTILE_CONFIGS", "HOSTILE_WEIGHTS", "hostile_model_files", "malicious_pickles",
           "mismatched_checkpoint"]
