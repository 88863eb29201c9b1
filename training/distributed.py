"""Process-group helpers for ``torchrun`` (gloo on CPU, nccl on GPU) and single-process runs."""

from __future__ import annotations

import hashlib
import os

import torch
import torch.distributed as dist


def init_distributed(device: str = "auto") -> tuple[int, int, torch.device]:
    """Initialise the process group when launched by torchrun.

    Args:
        device: ``auto`` (CUDA when available, else CPU), ``cuda`` (an error without CUDA) or
            ``cpu``. CUDA runs use nccl, CPU runs gloo.

    Returns:
        (rank, world size, device of this process).

    Raises:
        ValueError: ``device=cuda`` without a usable CUDA device.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: cuda, but torch {torch.__version__} sees no CUDA device "
                         f"({cpu_fallback_reason()})")
    cuda = device != "cpu" and torch.cuda.is_available()
    if cuda and local >= torch.cuda.device_count():
        raise ValueError(f"LOCAL_RANK {local} but only {torch.cuda.device_count()} CUDA "
                         "device(s) are visible")
    dev = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return rank, world, dev


def cpu_fallback_reason() -> str:
    """Why CUDA is not used: a CPU-only torch build, or no visible GPU."""
    if torch.version.cuda is None:
        return f"torch {torch.__version__} is a CPU-only build"
    return f"torch {torch.__version__} is built for CUDA {torch.version.cuda} but sees no GPU"


def is_main() -> bool:
    """True on rank 0 (before the process group exists: torchrun's ``RANK``, 0 without)."""
    if dist.is_initialized():
        return dist.get_rank() == 0
    return int(os.environ.get("RANK", "0")) == 0


def barrier() -> None:
    """Synchronise all ranks (no-op without a process group)."""
    if dist.is_initialized():
        dist.barrier()


def all_gather_objects(obj: object) -> list:
    """Gather one picklable object per rank (a list of length 1 without a process group)."""
    if not dist.is_initialized():
        return [obj]
    out: list = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def all_reduce_mean(value: float, device: torch.device) -> float:
    """Average a scalar over ranks."""
    if not dist.is_initialized():
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / dist.get_world_size()


def parameter_digest(module: torch.nn.Module) -> str:
    """SHA-256 of all parameters and buffers (to check that DDP ranks stayed in sync)."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def cleanup() -> None:
    """Destroy the process group if one exists."""
    if dist.is_initialized():
        dist.destroy_process_group()


def ranks_with(flag: bool | torch.Tensor, device: torch.device) -> list[int]:
    """The ranks where ``flag`` is true (an all-reduce every rank must join).

    Args:
        flag: this rank's flag (a Python bool or a 0-d tensor, e.g. ``~isfinite(loss)``).
        device: this rank's device (nccl reduces CUDA tensors).

    Returns:
        Sorted ranks whose flag is set; without a process group ``[0]`` or ``[]``.
    """
    world = dist.get_world_size() if dist.is_initialized() else 1
    rank = dist.get_rank() if dist.is_initialized() else 0
    votes = torch.zeros(world, dtype=torch.int32, device=device)
    votes[rank] = torch.as_tensor(flag, device=device).to(torch.int32)
    if dist.is_initialized():
        dist.all_reduce(votes)
    return [r for r, v in enumerate(votes.tolist()) if v]


def average_buffers(module: torch.nn.Module) -> None:
    """Average floating-point buffers (BatchNorm running statistics) over ranks.

    DDP broadcasts rank 0's buffers at the start of every forward but each rank then updates its
    own running statistics, so ranks differ after the last step; averaging them at the end of an
    epoch keeps all ranks (and the checkpoint) identical and uses every rank's statistics.
    """
    if not dist.is_initialized():
        return
    world = dist.get_world_size()
    for buf in module.buffers():
        if buf.is_floating_point():
            dist.all_reduce(buf)
            buf.div_(world)
        else:
            dist.broadcast(buf, src=0)
