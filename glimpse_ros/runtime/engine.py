"""The backbone engine interface and its errors (DESIGN §3); imports no engine.

An engine runs the inflated ResNet only: ``(B, 3, T, H, W) float32 -> (Z, c)`` with
``Z (B, Dz, T, H/32, W/32)`` and ``c (B, T, Dc)``, numpy in and out. A step engine runs one frame
of a causal backbone with an explicit state:
``step(frame (B, 3, H, W) float32, state) -> (z (B, Dz, H/32, W/32), c (B, Dc), new_state)``.
The state is a tuple of float32 arrays, one per temporal conv in network order
(``InflatedResNet.state_shapes``: partial sums over its last ``kt - 1`` input frames); ``None``
starts a sequence.
States are values: stepping never modifies a state passed in, so any state can be stepped from
again. The one exception is asked for by name (``create_step_engine(..., held_state=True)``,
OpenVINO): the engine holds the state and returns a handle, of which only the latest continues
(:mod:`glimpse_ros.runtime.openvino_held_state`); such engines set ``states_are_values = False``.

The engines (``torch_engine``, ``onnxruntime_engine``, ``openvino_engine``, ``tensorrt_*``) import
this module; :mod:`glimpse_ros.runtime.factory` creates them and is the only module that imports
them all.
"""

from __future__ import annotations

import os
from typing import Optional, Protocol, runtime_checkable

import numpy as np

StepState = tuple[np.ndarray, ...]


class EngineUnavailable(RuntimeError):
    """An engine cannot run on this machine (package missing, no GPU)."""


@runtime_checkable
class BackboneEngine(Protocol):
    """What every clip engine provides."""

    name: str
    precision: str

    def run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run the backbone: ``x (B, 3, T, H, W) float32 -> (Z, c)`` as float32 numpy arrays."""
        ...


@runtime_checkable
class BackboneStepEngine(Protocol):
    """What every step engine provides."""

    name: str
    precision: str

    def step(self, frame: np.ndarray, state: Optional[StepState]
             ) -> tuple[np.ndarray, np.ndarray, StepState]:
        """Run one frame: ``(B, 3, H, W)`` float32 and the state -> ``(z, c, new_state)``."""
        ...


def cpu_count() -> int:
    """Cores this process may use (affinity-aware)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def resolve_threads(threads: int) -> int:
    """Map ``threads`` (0 = every available core) to a positive thread count."""
    if threads < 0:
        raise ValueError(f"threads must be >= 0, got {threads}")
    return threads or cpu_count()


def check_clip(x: np.ndarray) -> np.ndarray:
    """Validate an engine input and return it as a C-contiguous float32 array."""
    if not isinstance(x, np.ndarray):
        raise ValueError(f"engine input must be a numpy array, got {type(x).__name__}")
    if x.ndim != 5 or x.shape[1] != 3:
        raise ValueError(f"engine input must be (B, 3, T, H, W), got shape {x.shape}")
    if x.dtype != np.float32:
        raise ValueError(f"engine input must be float32, got {x.dtype}")
    return np.ascontiguousarray(x)


def check_frame_input(frame: np.ndarray, shape: Optional[tuple[int, ...]] = None) -> np.ndarray:
    """Validate a step input (and its shape when the engine is fixed to one); C-contiguous."""
    if not isinstance(frame, np.ndarray):
        raise ValueError(f"step input must be a numpy array, got {type(frame).__name__}")
    if frame.ndim != 4 or frame.shape[1] != 3:
        raise ValueError(f"step input must be (B, 3, H, W), got shape {frame.shape}")
    if frame.dtype != np.float32:
        raise ValueError(f"step input must be float32, got {frame.dtype}")
    if shape is not None and tuple(frame.shape) != tuple(shape):
        raise ValueError(f"step input shape {frame.shape} differs from the engine's frame shape "
                         f"{tuple(shape)} (the step graph is compiled for one frame size)")
    return np.ascontiguousarray(frame)


def check_state(state: StepState, shapes: list[tuple[int, ...]]) -> None:
    """Raise ``ValueError`` unless ``state`` has the engine's number and shapes of arrays."""
    got = [tuple(s.shape) for s in state]
    if got != [tuple(s) for s in shapes]:
        raise ValueError(f"state: shapes {got[:2]}... ({len(got)} arrays) do not match the "
                         f"backbone's {[tuple(s) for s in shapes][:2]}... ({len(shapes)})")


__all__ = ["BackboneEngine", "BackboneStepEngine", "EngineUnavailable", "StepState",
           "check_clip", "check_frame_input", "check_state", "cpu_count", "resolve_threads"]
