"""State and output containers of the recurrent Glimpse Clouds head.

Shape legend: B batch, T frames, G glimpses, C workers, K memory frames (``KG`` slots), N classes,
D feature dim.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Union

import torch


@dataclass
class HeadState:
    """Everything the head carries from one frame to the next (one stream per batch row).

    Attributes:
        h: ``(B, Hg)`` glimpse-GRU hidden state.
        z_prev: ``(B, D)`` features of the previous glimpse (input of the next GRU step).
        r: ``(B, C, Hw)`` worker states.
        memory_values: ``(B, KG, D)`` stored what&where vectors (the ``G`` glimpses of each of
            the last ``K`` frames), chronological, newest last, kept in the metric space of the
            memory distance (``m_k L``, see ``memory.py``).
        memory_weights: ``(B, C, KG)`` per-worker slot weights ``w_{c,k}``.
        memory_times: ``(B, KG)`` long, frame index at which each slot was written.
        memory_fill: ``(B,)`` long, number of occupied slots (the last ``memory_fill`` ones).
        step: ``(B,)`` long, index of the next frame.
    """

    h: torch.Tensor
    z_prev: torch.Tensor
    r: torch.Tensor
    memory_values: torch.Tensor
    memory_weights: torch.Tensor
    memory_times: torch.Tensor
    memory_fill: torch.Tensor
    step: torch.Tensor

    @property
    def batch_size(self) -> int:
        """Number of independent streams."""
        return int(self.h.shape[0])

    def detach(self) -> "HeadState":
        """Return a copy cut from the autograd graph (truncated backpropagation, streaming)."""
        return HeadState(**{f.name: getattr(self, f.name).detach()
                            for f in dataclasses.fields(self)})

    def to(self, device: Union[str, torch.device]) -> "HeadState":
        """Return a copy with every tensor on ``device``."""
        return HeadState(**{f.name: getattr(self, f.name).to(device)
                            for f in dataclasses.fields(self)})


@dataclass
class StepOutput:
    """Outputs of one frame.

    Attributes:
        logits: ``(B, N)`` ``Σ_c q_c`` at this frame.
        worker_logits: ``(B, C, N)`` per-worker logits ``q_c``.
        glimpses: ``(B, G, 4)`` ``[x, y, sx, sy]``.
        assignment: ``(B, C, G)`` soft assignment ``p_{t,c,g}``.
        vectors: ``(B, G, D)`` what&where vectors ``v_{t,g}`` (e.g. to initialise the memory
            metric from their covariance).
    """

    logits: torch.Tensor
    worker_logits: torch.Tensor
    glimpses: torch.Tensor
    assignment: torch.Tensor
    vectors: torch.Tensor


@dataclass
class HeadOutput:
    """Outputs of a whole clip.

    Attributes:
        logits: ``(B, N)`` mean over frames of the step logits.
        step_logits: ``(B, T, N)``.
        worker_logits: ``(B, T, C, N)``.
        glimpses: ``(B, T, G, 4)``.
        assignment: ``(B, T, C, G)``.
        vectors: ``(B, T, G, D)`` what&where vectors.
    """

    logits: torch.Tensor
    step_logits: torch.Tensor
    worker_logits: torch.Tensor
    glimpses: torch.Tensor
    assignment: torch.Tensor
    vectors: torch.Tensor
