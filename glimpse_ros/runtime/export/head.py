"""ONNX export of the recurrent head's frame step, state as explicit inputs/outputs (DESIGN §3).

Graph (opset 17, batch axis ``B`` dynamic; layer4 map size and input crop size fixed at export):
``(z_t, c_t, *state_in) -> (logits, glimpses, assignment, *state_out)``; names, shapes and
dtypes in :mod:`glimpse_ros.runtime.head_graph` (the integer state fields stay int64).

The traced function is ``GlimpseCloudsHead.step`` itself. The memory's empty / partly filled /
full cases are masks and ``where`` selections on ``memory_fill`` inside that step (no Python
branch on tensor values, see ``model/memory.py``), so one trace, made on the fresh state, is
correct at every fill level, also for batch rows at different steps; the export tests step the
graph past a full memory against the eager head. The frame loop over ``G`` glimpses and over
``C`` workers is unrolled (both are constants of the model).

Not exportable, and refused: the random-glimpse ablation (``glimpse_locations: random`` draws
from a torch generator at every step), the oracle one (ground-truth boxes) and quantised heads
(``head_precision: int8``). ``glimpse_border`` is traced like the rest of the step (a ``Clip`` of
the cell coordinates with ``clamp``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from glimpse_ros.model.head import GlimpseCloudsHead
from glimpse_ros.model.state import HeadState
from glimpse_ros.runtime.export.clip import OPSET
from glimpse_ros.runtime.head_graph import INPUT_NAMES, OUTPUT_NAMES, STATE_FIELDS

LOG = logging.getLogger("glimpse_ros.runtime")

# Bump when the head export changes (names, axes, dtypes, opset), so cached files are not reused.
HEAD_EXPORT_VERSION = 1

if tuple(f.name for f in dataclasses.fields(HeadState)) != STATE_FIELDS:  # pragma: no cover
    raise ImportError("head_graph.STATE_FIELDS no longer matches the fields of HeadState")


class HeadStepGraph(nn.Module):
    """``(z_t, c_t, *state) -> (logits, glimpses, assignment, *new_state)`` around a head.

    Args:
        head: the fp32 ``GlimpseCloudsHead`` (learned glimpse locations).
        input_size: ``(H, W)`` of the input crop the features come from (glimpses are in its
            coordinates); defaults to the model's square crop.
    """

    def __init__(self, head: GlimpseCloudsHead,
                 input_size: Optional[tuple[int, int]] = None) -> None:
        super().__init__()
        if not isinstance(head, GlimpseCloudsHead):
            raise ValueError(f"expected a GlimpseCloudsHead, got {type(head).__name__}")
        if head.random_locations is not None:
            raise ValueError("the random-glimpse ablation (glimpse_locations: random) draws "
                             "from a torch generator every step and cannot be exported")
        if head.cfg.glimpse_locations == "oracle":
            raise ValueError("the oracle-glimpse ablation (glimpse_locations: oracle) reads "
                             "ground-truth boxes and cannot be exported")
        quantised = [n for n, m in head.named_modules() if "quantized" in type(m).__module__]
        if quantised:
            raise ValueError(f"quantised head (e.g. {quantised[0]}): export the fp32 head")
        self.head = head
        self.input_size = head.input_size(input_size)

    def forward(self, z_t: torch.Tensor, c_t: torch.Tensor,
                *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """One frame: ``z_t (B, Dz, h, w)``, ``c_t (B, Dc)``, state fields in HeadState order."""
        new, out = self.head.step(HeadState(*state), z_t, c_t, self.input_size)
        return (out.logits, out.glimpses, out.assignment,
                *(getattr(new, f) for f in STATE_FIELDS))


def _static_state_outputs(onnx_path: str) -> None:
    """Give every ``state_out_<field>`` the dims of its ``state_in_<field>`` in the file.

    The tracer leaves a few output dims symbolic (e.g. after a slice); the state outputs are
    the next frame's inputs, so their declared shapes are made identical (batch stays ``B``).
    """
    import onnx

    model = onnx.load(onnx_path)
    inputs = {i.name: i.type.tensor_type.shape for i in model.graph.input}
    for out in model.graph.output:
        if out.name.startswith("state_out_"):
            out.type.tensor_type.shape.CopyFrom(inputs["state_in_" + out.name[len("state_out_"):]])
    onnx.checker.check_model(model)
    onnx.save(model, onnx_path)


def export_head(head: GlimpseCloudsHead, path: str | Path,
                feature_size: Optional[tuple[int, int]] = None,
                input_size: Optional[tuple[int, int]] = None, opset: int = OPSET) -> Path:
    """Export the frame step of ``head`` to ONNX at ``path`` (written atomically).

    Args:
        head: the fp32 head (its parameters' device is used for tracing).
        path: destination ``.onnx`` file.
        feature_size: ``(h, w)`` of the layer4 map, fixed in the graph; defaults to the crop
            size / 32 (the backbone's stride).
        input_size: ``(H, W)`` of the input crop, fixed in the graph; defaults to the crop.
        opset: ONNX opset (>= 17).

    Raises:
        ValueError: unexportable head (see the module docstring), bad sizes or opset.
    """
    if opset < 17:
        raise ValueError(f"opset must be >= 17, got {opset}")
    graph = HeadStepGraph(head, input_size)
    if feature_size is None:
        feature_size = (graph.input_size[0] // 32, graph.input_size[1] // 32)
    if len(feature_size) != 2 or min(feature_size) < 1:
        raise ValueError(f"feature_size must be (h, w) >= 1, got {feature_size}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = head.training
    head.eval()
    device = head.memory.initial_logits.device
    state = head.initial_state(1, device=device, dtype=torch.float32)
    cfg = head.cfg
    args = (torch.zeros(1, cfg.feature_dim, *feature_size, device=device),
            torch.zeros(1, cfg.context_dim, device=device),
            *(getattr(state, f) for f in STATE_FIELDS))
    axes = {name: {0: "B"} for name in INPUT_NAMES + OUTPUT_NAMES}
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=path.parent)
    os.close(fd)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            torch.onnx.export(graph, args, tmp, dynamo=False, opset_version=opset,
                              input_names=INPUT_NAMES, output_names=OUTPUT_NAMES,
                              dynamic_axes=axes, do_constant_folding=True)
        _static_state_outputs(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
        head.train(was_training)
    LOG.info("exported head step to %s (opset %d, map %s, input %s, %.1f MB)", path, opset,
             tuple(feature_size), graph.input_size, path.stat().st_size / 1e6)
    return path


__all__ = ["HEAD_EXPORT_VERSION", "HeadStepGraph", "export_head"]
