"""Self-describing training checkpoints (torch.save of tensors and plain values only).

A checkpoint holds the model and optimiser state, the run's config, label names, metrics, the git
revision and the step, and is read back with ``torch.load(weights_only=True)`` (no arbitrary
unpickling). The deployable model is exported separately as safetensors
(:func:`glimpse_ros.model.checkpoint.save_checkpoint`).
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

log = logging.getLogger(__name__)


def git_revision() -> str:
    """``git describe`` of the source tree (``unknown`` outside a repository)."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                             text=True, timeout=10, cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def save_training_checkpoint(path: Path, **content: Any) -> None:
    """Write ``content`` atomically (temporary file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(content, tmp)
    tmp.replace(path)


def load_training_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> dict:
    """Read a training checkpoint with ``weights_only=True``; ``ValueError`` when unusable."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # torch raises several unrelated types for bad files
        raise ValueError(f"{path}: not a readable training checkpoint ({err})") from err
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise ValueError(f"{path}: training checkpoint without a 'model' entry")
    return ckpt


def load_model_weights(path: str | Path, device: str | torch.device) -> tuple[dict, dict]:
    """The model tensors of a training checkpoint on ``device``, plus its small entries.

    Every DDP rank calls this for itself at the end of training instead of receiving rank 0's
    whole checkpoint: the file is memory-mapped on the CPU (``weights_only``), so the optimizer
    state is never read into memory, and only the model tensors are copied, to this rank's own
    device.

    Returns:
        (model state dict on ``device``, the entries other than ``model`` / ``optimizer`` /
        ``scaler``: step, epoch, metrics, config, ...).

    Raises:
        ValueError: naming the file when it is missing or unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # torch raises several unrelated types for bad files
        raise ValueError(f"{path}: not a readable training checkpoint ({err})") from err
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise ValueError(f"{path}: training checkpoint without a 'model' entry")
    state = {k: v.to(device) for k, v in ckpt["model"].items()}
    info = {k: v for k, v in ckpt.items() if k not in ("model", "optimizer", "scaler")}
    return state, info


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Model weights from a training checkpoint (.pt) or an exported model (.safetensors)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        if not path.is_file():
            raise ValueError(f"{path}: checkpoint not found")
        return load_file(str(path))
    return load_training_checkpoint(path)["model"]


def load_exact(model: torch.nn.Module, path: str | Path) -> None:
    """Load every tensor of ``model`` from ``path`` (evaluation: nothing may be left untrained).

    Raises:
        ValueError: naming the file when keys or shapes differ from the model's.
    """
    try:
        model.load_state_dict(read_state_dict(path))
    except RuntimeError as err:     # missing/unexpected keys or shape mismatches
        raise ValueError(f"{path}: does not match this model: {err}") from err


def load_matching(model: torch.nn.Module, path: str | Path) -> list[str]:
    """Initialise ``model`` from ``path``, skipping tensors whose shape differs.

    Used for stage 2 (from the stage-1 global model) and for N-UCLA (from the NTU model, whose
    classifiers have 60 outputs instead of 10). Skipped and missing keys are logged and returned.

    Raises:
        ValueError: when not a single backbone tensor matches (wrong file or architecture).
    """
    state = read_state_dict(path)
    own = model.state_dict()
    use = {k: v for k, v in state.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    if not any(k.startswith("backbone.") for k in use):
        raise ValueError(f"{path}: no backbone tensor matches this model's architecture")
    skipped = sorted(k for k in state if k not in use)
    missing = sorted(k for k in own if k not in use)
    model.load_state_dict(use, strict=False)
    log.info("initialised from %s: %d tensors loaded, %d skipped (shape/name mismatch) %s, "
             "%d left at their initial values %s", path, len(use), len(skipped), skipped[:6],
             len(missing), missing[:6])
    return skipped + missing
