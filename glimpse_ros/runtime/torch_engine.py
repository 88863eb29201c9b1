"""Reference engine: the PyTorch backbone module in eager mode."""

from __future__ import annotations

import logging

import numpy as np
import torch

from glimpse_ros.runtime.engine import check_clip

LOG = logging.getLogger("glimpse_ros.runtime")


class TorchEngine:
    """Run the ``InflatedResNet`` module eagerly (CPU, or CUDA when the module lives there).

    ``threads`` sets torch's intra-op thread count, which is process-wide in PyTorch.
    fp16 is only accepted for a module on a CUDA device.
    """

    name = "torch"

    def __init__(self, module: torch.nn.Module, precision: str = "fp32", threads: int = 1) -> None:
        """Wrap ``module`` (switched to eval mode)."""
        if not isinstance(module, torch.nn.Module):
            raise ValueError(f"torch engine needs a torch.nn.Module, got {type(module).__name__}")
        self.module = module.eval()
        try:
            self.device = next(module.parameters()).device
        except StopIteration:
            self.device = torch.device("cpu")
        if precision == "fp16" and self.device.type != "cuda":
            raise ValueError("torch engine: fp16 needs the module on a CUDA device")
        self.precision = precision
        self.dtype = torch.float16 if precision == "fp16" else torch.float32
        if self.device.type == "cpu" and torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
            LOG.info("torch engine: %d intra-op threads", threads)

    @torch.inference_mode()
    def run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run the backbone: ``x (B, 3, T, H, W) float32 -> (Z, c)`` float32 numpy arrays."""
        x = check_clip(x)
        xt = torch.from_numpy(x).to(self.device)
        if self.dtype == torch.float16:
            with torch.autocast("cuda", dtype=torch.float16):
                z, c = self.module(xt)
        else:
            z, c = self.module(xt)
        # Z (B, Dz, T, h, w), c (B, T, Dc)
        return (z.float().cpu().numpy(), c.float().cpu().numpy())
