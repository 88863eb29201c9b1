"""Inputs and outputs of the exported head step graph: names, state packing, feeds (numpy only).

The contract between the head export (:mod:`glimpse_ros.runtime.export.head`) and the engines
that run it (:mod:`glimpse_ros.runtime.head_engine`); nothing here imports torch.

Shape legend: B batch, Dz layer4 channels, (h, w) layer4 map, Dc context dim, Hg glimpse-GRU
hidden, C workers, Hw worker hidden, KG memory slots (K frames x G glimpses), N classes.

- inputs: ``z_t (B, Dz, h, w)`` float32, ``c_t (B, Dc)`` float32, then one ``state_in_<field>``
  per field of ``glimpse_ros.model.state.HeadState``, in its order (:data:`STATE_FIELDS`).
- outputs: ``logits (B, N)``, ``glimpses (B, G, 4)``, ``assignment (B, C, G)``, then one
  ``state_out_<field>`` per state field, shaped (and typed) as its ``state_in_<field>``.

State tensors (B is the only dynamic axis; the rest is fixed at export):

=================  =============  =======  ==============================================
field              shape          dtype    meaning
=================  =============  =======  ==============================================
h                  (B, Hg)        float32  glimpse-GRU hidden state
z_prev             (B, Dz)        float32  features of the previous glimpse
r                  (B, C, Hw)     float32  worker states
memory_values      (B, KG, Dz)    float32  stored vectors (metric space), newest last
memory_weights     (B, C, KG)     float32  per-worker slot weights
memory_times       (B, KG)        int64    frame index each slot was written at
memory_fill        (B,)           int64    occupied slots (the last ``memory_fill``)
step               (B,)           int64    index of the next frame
=================  =============  =======  ==============================================

The integer fields stay int64, as in the PyTorch state, so the frame counter and the elapsed
times ``step - memory_times`` are exact on endless streams (a float32 counter would lose frames
after 2^24 frames, 6.5 days at 30 fps). The fresh state is all zeros (as
``GlimpseCloudsHead.initial_state``), so a sequence start needs no extra graph input: a row is
reset by zeroing its state (:func:`reset_rows`), and rows of one batch may be at different steps.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

import numpy as np

Z_T, C_T = "z_t", "c_t"
LOGITS, GLIMPSES, ASSIGNMENT = "logits", "glimpses", "assignment"
# The fields of glimpse_ros.model.state.HeadState, in its order (a test checks they agree).
STATE_FIELDS = ("h", "z_prev", "r", "memory_values", "memory_weights", "memory_times",
                "memory_fill", "step")
INTEGER_FIELDS = frozenset({"memory_times", "memory_fill", "step"})

HeadGraphState = dict[str, np.ndarray]


def state_input_name(field: str) -> str:
    """Graph input carrying state ``field``."""
    return f"state_in_{field}"


def state_output_name(field: str) -> str:
    """Graph output carrying the new value of state ``field``."""
    return f"state_out_{field}"


INPUT_NAMES = [Z_T, C_T] + [state_input_name(f) for f in STATE_FIELDS]
OUTPUT_NAMES = [LOGITS, GLIMPSES, ASSIGNMENT] + [state_output_name(f) for f in STATE_FIELDS]


def field_dtype(field: str) -> np.dtype:
    """Return the numpy dtype of state ``field`` in the graph (int64 or float32)."""
    if field not in STATE_FIELDS:
        raise ValueError(f"unknown head state field {field!r}; expected one of {STATE_FIELDS}")
    return np.dtype(np.int64) if field in INTEGER_FIELDS else np.dtype(np.float32)


def graph_dims(dims: dict[str, list[Any]]) -> dict[str, tuple[int, ...]]:
    """Static per-row dims (without the batch axis) of every graph input, by input name.

    Args:
        dims: input name -> the graph's dims (batch first; a symbol or None where dynamic).

    Raises:
        ValueError: an input is missing, or a dim other than the batch is not static.
    """
    if list(dims) != INPUT_NAMES:
        raise ValueError(f"not a head step export: inputs {list(dims)[:3]}..., expected "
                         f"{INPUT_NAMES[:3]}...")
    out = {}
    for name, d in dims.items():
        if not all(isinstance(n, int) and n > 0 for n in d[1:]):
            raise ValueError(f"{name}: dims {d} are not static (not a head step export?)")
        out[name] = tuple(int(n) for n in d[1:])
    return out


def fresh_state(dims: dict[str, tuple[int, ...]], batch: int) -> HeadGraphState:
    """The state before the first frame (all zeros) for ``batch`` streams.

    Args:
        dims: per-row dims by input name (:func:`graph_dims`).
        batch: ``B >= 1``.
    """
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    return {f: np.zeros((batch, *dims[state_input_name(f)]), field_dtype(f))
            for f in STATE_FIELDS}


def check_state(state: HeadGraphState, dims: dict[str, tuple[int, ...]]) -> int:
    """Validate a state (fields, dtypes, shapes, one batch size); return that batch size."""
    if set(state) != set(STATE_FIELDS):
        raise ValueError(f"state must have the fields {STATE_FIELDS}, got {sorted(state)}")
    batch = int(state["step"].shape[0]) if state["step"].ndim == 1 else -1
    for f in STATE_FIELDS:
        a, want = state[f], (batch, *dims[state_input_name(f)])
        if a.dtype != field_dtype(f) or tuple(a.shape) != want:
            raise ValueError(f"state {f}: expected {field_dtype(f)} {want}, got {a.dtype} "
                             f"{tuple(a.shape)}")
    return batch


def reset_rows(state: HeadGraphState, rows: Optional[Iterable[int]] = None) -> HeadGraphState:
    """Return ``state`` with the given batch rows (default: all) set to the fresh state."""
    out = {f: a.copy() for f, a in state.items()}
    index = slice(None) if rows is None else list(rows)
    for a in out.values():
        a[index] = 0
    return out


def check_frame(z_t: np.ndarray, c_t: np.ndarray, dims: dict[str, tuple[int, ...]],
                batch: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate one frame's ``z_t (B, Dz, h, w)``, ``c_t (B, Dc)``; return them float32, C order.

    Raises:
        ValueError: wrong rank, per-row shape or batch size (naming the input).
    """
    out = []
    for name, a in ((Z_T, z_t), (C_T, c_t)):
        a = np.asarray(a)
        want = (batch, *dims[name])
        if tuple(a.shape) != want:
            raise ValueError(f"{name}: expected shape {want}, got {tuple(a.shape)}")
        if not np.issubdtype(a.dtype, np.floating):
            raise ValueError(f"{name}: expected float32, got {a.dtype}")
        out.append(np.ascontiguousarray(a, dtype=np.float32))
    return out[0], out[1]


def step_feed(z_t: np.ndarray, c_t: np.ndarray, state: HeadGraphState) -> dict[str, np.ndarray]:
    """Graph feed for one frame (inputs already checked), keyed by input name."""
    feed = {Z_T: z_t, C_T: c_t}
    feed.update((state_input_name(f), state[f]) for f in STATE_FIELDS)
    return feed


def split_outputs(outputs: list[np.ndarray]
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, HeadGraphState]:
    """``[logits, glimpses, assignment, *state]`` in :data:`OUTPUT_NAMES` order -> parts."""
    if len(outputs) != len(OUTPUT_NAMES):
        raise ValueError(f"expected {len(OUTPUT_NAMES)} outputs, got {len(outputs)}")
    logits, glimpses, assignment, *new = outputs
    return logits, glimpses, assignment, dict(zip(STATE_FIELDS, new))


__all__ = ["ASSIGNMENT", "C_T", "GLIMPSES", "HeadGraphState", "INPUT_NAMES", "INTEGER_FIELDS",
           "LOGITS", "OUTPUT_NAMES", "STATE_FIELDS", "Z_T", "check_frame", "check_state",
           "field_dtype", "fresh_state", "graph_dims", "reset_rows", "split_outputs",
           "state_input_name", "state_output_name", "step_feed"]
