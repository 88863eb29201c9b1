"""Inputs and outputs of the exported backbone step graph: names, state shapes, feeds (numpy only).

The contract between the step export (:mod:`glimpse_ros.runtime.export.step`) and the engines that
run it (ONNX Runtime, OpenVINO, TensorRT):

- inputs: ``frame (B, 3, H, W)``; ``fresh (B,)`` float32, 1 where a sequence starts (that row's
  state inputs are ignored); ``state_in_i (B, Cout, h, w)``, one per partial sum (``kt - 1`` per
  temporal conv, in network order: ``InflatedResNet.state_shapes``).
- outputs: ``Z (B, Dz, H/32, W/32)``, ``c (B, Dc)``, ``state_out_i`` shaped as ``state_in_i``.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

FRAME, FRESH, Z, C = "frame", "fresh", "Z", "c"


def state_input_names(n: int) -> list[str]:
    """Names of the ``n`` state inputs, in network order."""
    return [f"state_in_{i}" for i in range(n)]


def state_output_names(n: int) -> list[str]:
    """Names of the ``n`` state outputs, in network order."""
    return [f"state_out_{i}" for i in range(n)]


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


__all__ = ["C", "FRAME", "FRESH", "Z", "graph_state_shapes", "state_input_names",
           "state_output_names", "step_inputs"]
