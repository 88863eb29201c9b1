"""Reference engines: the PyTorch backbone module in eager mode (clip and causal step)."""

from __future__ import annotations

import logging
from typing import Optional

import numpy as np
import torch

from glimpse_ros.runtime.engine import StepState, check_clip, check_frame_input, check_state

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


class TorchStepEngine:
    """Reference step engine: ``InflatedResNet.step`` in eager mode (fp32)."""

    name = "torch"

    def __init__(self, module: torch.nn.Module, threads: int = 1) -> None:
        """Wrap a causal ``InflatedResNet`` (switched to eval mode)."""
        if not getattr(module, "causal", False):
            raise ValueError("the step engine needs a causal backbone (temporal_padding: causal)")
        self.module = module.eval()
        self.precision = "fp32"
        self.device = next(module.parameters()).device
        if self.device.type == "cpu" and torch.get_num_threads() != threads:
            torch.set_num_threads(threads)

    @torch.inference_mode()
    def step(self, frame: np.ndarray, state: Optional[StepState]
             ) -> tuple[np.ndarray, np.ndarray, StepState]:
        """Run one frame; see the module docstring."""
        from glimpse_ros.model.backbone import BackboneState

        frame = check_frame_input(frame)
        prev = None
        if state is not None:
            check_state(state, self.module.state_shapes(frame.shape[0], *frame.shape[2:]))
            prev = BackboneState(tuple(torch.from_numpy(np.ascontiguousarray(s)).to(self.device)
                                       for s in state))
        z, c, new = self.module.step(torch.from_numpy(frame).to(self.device), prev)
        # The new buffers are views of this step's windows; contiguous copies make them values.
        return (z.cpu().numpy(), c.cpu().numpy(),
                tuple(b.contiguous().cpu().numpy() for b in new.buffers))


__all__ = ["TorchEngine", "TorchStepEngine"]
