"""The glimpse GRU ``Ω`` (paper eq. 2) with its per-frame input applied once per frame.

``Ω`` runs ``G`` times per frame on the input ``[z_{g-1}, r_t]``. The worker summary ``r_t`` is
the same for all ``G`` glimpses of a frame, so its share of the input projection,
``W_ih[:, D:] r_t + b_ih``, is computed once per frame (``frame_gates``) and added to
``W_ih[:, :D] z_{g-1}`` in every ``cell`` call. This is the same function as ``nn.GRUCell`` on the
concatenated input (only the float summation order differs) and reads ``(G - 1) x 3Hg x Hw`` fewer
weights per frame.

The gate arithmetic is written out (``gru_update``) instead of calling ``torch.gru_cell`` with the
per-sample ``(B, 3Hg)`` term as its input bias: on CUDA that call dispatches to the fused GRU
kernel, which accepts only 1-D ``(3Hg,)`` biases.

The class IS an ``nn.GRUCell`` (same parameters ``weight_ih (3Hg, D + Hw)``, ``weight_hh``,
``bias_ih``, ``bias_hh``), so checkpoints written before the split load unchanged.
"""

from __future__ import annotations

import torch
from torch import nn


def gru_update(gi: torch.Tensor, gh: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """GRU gates as ``nn.GRUCell`` computes them (order r, z, n) from ``gi``/``gh`` ``(B, 3H)``.

    Args:
        gi: ``(B, 3H)`` input projection ``W_ih x + b_ih``.
        gh: ``(B, 3H)`` hidden projection ``W_hh h + b_hh``.
        h: ``(B, H)`` previous hidden state.

    Returns:
        ``(B, H)`` new hidden state.
    """
    i_r, i_z, i_n = gi.chunk(3, dim=1)  # each (B, H)
    h_r, h_z, h_n = gh.chunk(3, dim=1)  # each (B, H)
    reset = torch.sigmoid(i_r + h_r)
    update = torch.sigmoid(i_z + h_z)
    new = torch.tanh(i_n + reset * h_n)
    return new + update * (h - new)  # (1 - u) n + u h, (B, H)


class GlimpseRNN(nn.GRUCell):
    """``nn.GRUCell`` over ``[z, r]`` whose ``r`` part is applied once per frame.

    Args:
        feature_dim: ``D``, size of the glimpse features ``z``.
        worker_dim: ``Hw``, size of the workers' summary ``r_t``.
        hidden_dim: ``Hg``.
    """

    def __init__(self, feature_dim: int, worker_dim: int, hidden_dim: int) -> None:
        super().__init__(feature_dim + worker_dim, hidden_dim)
        self.feature_dim = feature_dim

    def frame_gates(self, r_sum: torch.Tensor) -> torch.Tensor:
        """Return ``W_ih[:, D:] r_t + b_ih`` ``(B, 3Hg)``, the input gates' frame-constant part."""
        w_r = self.weight_ih[:, self.feature_dim:]  # (3Hg, Hw) view
        return nn.functional.linear(r_sum, w_r, self.bias_ih)  # (B, 3Hg)

    def cell(self, z: torch.Tensor, h: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
        """One GRU step on ``[z, r_t]`` given ``gates = frame_gates(r_t)``.

        Args:
            z: ``(B, D)`` previous glimpse features.
            h: ``(B, Hg)`` hidden state.
            gates: ``(B, 3Hg)`` from ``frame_gates``.

        Returns:
            ``(B, Hg)`` new hidden state.
        """
        w_z = self.weight_ih[:, :self.feature_dim]  # (3Hg, D) view
        gi = nn.functional.linear(z, w_z) + gates  # (B, 3Hg): W_z z + W_r r + b_ih
        gh = nn.functional.linear(h, self.weight_hh, self.bias_hh)  # (B, 3Hg)
        return gru_update(gi, gh, h)  # (B, Hg)
