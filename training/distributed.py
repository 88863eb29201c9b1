"""Process-group helpers for ``torchrun`` (gloo on CPU, nccl on GPU) and single-process runs."""

from __future__ import annotations

import hashlib
import os

import torch
import torch.distributed as dist


def init_distributed() -> tuple[int, int, torch.device]:
    """Initialise the process group when launched by torchrun.

    Returns:
        (rank, world size, device of this process).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return rank, world, device


def is_main() -> bool:
    """True on rank 0 (or without a process group)."""
    return not dist.is_initialized() or dist.get_rank() == 0


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


def broadcast_object(obj: object, device: torch.device) -> object:
    """Send rank 0's ``obj`` to every rank."""
    if not dist.is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0, device=device if device.type == "cuda" else None)
    return box[0]


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
