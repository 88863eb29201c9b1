"""ONNX export of the causal backbone's frame step, state as explicit inputs/outputs (DESIGN §3).

Graph (opset 17, batch axis ``B`` dynamic, frame size fixed at export):

- inputs: ``frame (B, 3, H, W)``; ``fresh (B,)`` float32, 1 where a sequence starts (that row's
  state inputs are ignored, the convs fill their history from the frame as the clip forward
  does); ``state_in_i (B, Cout, h, w)``, one per partial sum of a temporal conv's taps over its
  last input frames (``TimePaddedConv3d.step``: ``kt - 1`` per conv, in network order,
  ``InflatedResNet.state_shapes``; ResNet-50: 32).
- outputs: ``Z (B, Dz, H/32, W/32)``, ``c (B, Dc)``, ``state_out_i`` shaped as ``state_in_i``.

``fresh`` is a float rather than a bool input because every engine (TensorRT included) takes
float inputs. The graph is a plain chain of convolutions plus one ``Where`` per partial sum.
Versions: 3 kept a conv's partial sums in one tensor and applied its taps in one convolution
(split and concatenated every frame); 4 keeps them apart and applies each tap as its own
convolution; 5 exports the backbone with its batch norms folded into the convolutions
(:func:`~glimpse_ros.model.bn_fold.fold_batchnorm`): the exporter left them as separate nodes,
and int8 quantisation then rounded each conv's and each batch norm's output as well.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from pathlib import Path
import torch
from torch import nn

from glimpse_ros.model.bn_fold import fold_batchnorm
from glimpse_ros.runtime.export.clip import OPSET
from glimpse_ros.runtime.step_graph import (C, FRAME, FRESH, Z, state_input_names,
                                            state_output_names)

LOG = logging.getLogger("glimpse_ros.runtime")

# Bump when the step export changes (names, axes, opset), so cached files are not reused.
# 2: per-frame layers exported as 2D operators (model/frame_ops.py); 3: 4D tensors throughout,
# states as partial sums of the temporal convs' taps; 4: one tensor per partial sum, one conv
# per tap; 5: batch norms folded into the convs.
STEP_EXPORT_VERSION = 5


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
        backbone: a causal ``InflatedResNet``. It is exported as an evaluation-mode copy with its
            batch norms folded into the convs (``fold_batchnorm``), so the graph's states are the
            folded convs' partial sums (each scaled by its norm), not ``backbone.step``'s.
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
    graph = StepGraph(fold_batchnorm(backbone))  # an evaluation-mode copy
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
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
    LOG.info("exported backbone step to %s (opset %d, %d state tensors, %.1f MB)", path, opset,
             len(shapes), path.stat().st_size / 1e6)
    return path


__all__ = ["STEP_EXPORT_VERSION", "StepGraph", "export_step"]
