"""ONNX export of the causal backbone's frame step, state as explicit inputs/outputs (DESIGN §3).

Graph (opset 17, batch axis ``B`` dynamic, frame size fixed at export):

- inputs: ``frame (B, 3, H, W)``; ``fresh (B,)`` float32, 1 where a sequence starts (that row's
  state inputs are ignored, the convs fill their history from the frame as the clip forward
  does); ``state_in_i (B, Cin_i, kt-1, h_i, w_i)`` for every temporal conv ``i`` in network
  order (``InflatedResNet.state_shapes``).
- outputs: ``Z (B, Dz, H/32, W/32)``, ``c (B, Dc)``, ``state_out_i`` shaped as ``state_in_i``.

``fresh`` is a float rather than a bool input because every engine (TensorRT included) takes
float inputs. The graph is a plain chain of convolutions plus one ``Where`` per temporal conv.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from glimpse_ros.runtime.export import OPSET

LOG = logging.getLogger("glimpse_ros.runtime")

# Bump when the step export changes (names, axes, opset), so cached files are not reused.
STEP_EXPORT_VERSION = 2  # 2: per-frame layers exported as 2D operators (model/frame_ops.py)
FRAME, FRESH, Z, C = "frame", "fresh", "Z", "c"


def state_input_names(n: int) -> list[str]:
    """Names of the ``n`` state inputs, in network order."""
    return [f"state_in_{i}" for i in range(n)]


def state_output_names(n: int) -> list[str]:
    """Names of the ``n`` state outputs, in network order."""
    return [f"state_out_{i}" for i in range(n)]


class StepGraph(nn.Module):
    """``(frame, fresh, *states) -> (Z, c, *new_states)`` around a causal ``InflatedResNet``."""

    def __init__(self, backbone: nn.Module) -> None:
        """Wrap ``backbone`` (must be causal)."""
        super().__init__()
        if not getattr(backbone, "causal", False):
            raise ValueError("only a causal backbone (temporal_padding: causal) has a step to "
                             "export; a symmetric one is exported as a clip")
        self.backbone = backbone

    def forward(self, frame: torch.Tensor, fresh: torch.Tensor,
                *states: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Run one frame; see the module docstring for shapes."""
        z, c, new = self.backbone.step_buffers(frame, list(states), fresh > 0.5)
        return (z, c, *new)


def export_step(backbone: nn.Module, path: str | Path,
                frame_shape: tuple[int, int, int, int] = (1, 3, 224, 224),
                opset: int = OPSET) -> Path:
    """Export the step of a causal ``backbone`` to ONNX at ``path`` (written atomically).

    Args:
        backbone: a causal ``InflatedResNet``.
        path: destination ``.onnx`` file.
        frame_shape: ``(B, 3, H, W)``; H and W are fixed in the graph, B stays dynamic.
        opset: ONNX opset (>= 17).

    Raises:
        ValueError: symmetric backbone, bad ``frame_shape`` or opset.
    """
    if opset < 17:
        raise ValueError(f"opset must be >= 17, got {opset}")
    if len(frame_shape) != 4 or frame_shape[1] != 3:
        raise ValueError(f"frame_shape must be (B, 3, H, W), got {frame_shape}")
    graph = StepGraph(backbone)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = backbone.training
    backbone.eval()
    device = next(backbone.parameters()).device
    b, _, h, w = frame_shape
    shapes = backbone.state_shapes(b, h, w)
    args = (torch.zeros(frame_shape, device=device), torch.ones(b, device=device),
            *(torch.zeros(s, device=device) for s in shapes))
    inputs = [FRAME, FRESH] + state_input_names(len(shapes))
    outputs = [Z, C] + state_output_names(len(shapes))
    axes = {name: {0: "B"} for name in inputs + outputs}
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=path.parent)
    os.close(fd)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            torch.onnx.export(graph, args, tmp, dynamo=False, opset_version=opset,
                              input_names=inputs, output_names=outputs, dynamic_axes=axes,
                              do_constant_folding=True)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
        backbone.train(was_training)
    LOG.info("exported backbone step to %s (opset %d, %d state tensors, %.1f MB)", path, opset,
             len(shapes), path.stat().st_size / 1e6)
    return path


def step_inputs(frame: np.ndarray, state: Optional[tuple[np.ndarray, ...]],
                shapes: list[tuple[int, ...]]) -> dict[str, np.ndarray]:
    """Feed of the step graph for ``frame (B, 3, H, W)`` and a state (None = fresh).

    Args:
        frame: checked float32 frame.
        state: the previous step's state outputs, or None at the start of a sequence.
        shapes: the graph's state shapes with the batch dim as in ``frame``.
    """
    b = frame.shape[0]
    if state is None:
        fresh = np.ones(b, np.float32)
        state = tuple(np.zeros(s, np.float32) for s in shapes)  # ignored where fresh = 1
    else:
        fresh = np.zeros(b, np.float32)
        if [tuple(s.shape) for s in state] != [tuple(s) for s in shapes]:
            raise ValueError(f"state: {len(state)} arrays of shapes "
                             f"{[tuple(s.shape) for s in state][:2]}..., expected {len(shapes)} "
                             f"of shapes {[tuple(s) for s in shapes][:2]}...")
    feed = {FRAME: frame, FRESH: fresh}
    feed.update(zip(state_input_names(len(shapes)),
                    (np.ascontiguousarray(s, dtype=np.float32) for s in state)))
    return feed


def graph_state_shapes(dims: list[list[Any]], batch: int) -> list[tuple[int, ...]]:
    """State shapes from the graph's state input dims, batch axis (dim 0) set to ``batch``.

    Raises:
        ValueError: when a state dim other than the batch is not static.
    """
    shapes = []
    for i, d in enumerate(dims):
        if not all(isinstance(n, int) and n > 0 for n in d[1:]):
            raise ValueError(f"state_in_{i}: dims {d} are not static (not a step export?)")
        shapes.append((batch, *(int(n) for n in d[1:])))
    return shapes


__all__ = ["FRAME", "FRESH", "STEP_EXPORT_VERSION", "StepGraph", "export_step",
           "graph_state_shapes", "state_input_names", "state_output_names", "step_inputs"]
