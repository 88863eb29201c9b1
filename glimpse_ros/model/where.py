"""The "what and where" embedding of paper eq. 5: ``v = z ⊙ Λ(l)``."""

from __future__ import annotations

import torch
from torch import nn


class WhatWhere(nn.Module):
    """Gate glimpse features with an embedding of their location.

    ``Λ`` is an MLP ``4 -> where_hidden -> feature_dim`` with a ReLU on the hidden layer (paper §6:
    one hidden layer of 256 units).
    """

    def __init__(self, feature_dim: int, where_hidden: int) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        self.embed = nn.Sequential(
            nn.Linear(4, where_hidden),
            nn.ReLU(inplace=True),
            nn.Linear(where_hidden, feature_dim),
        )

    def forward(self, z: torch.Tensor, glimpse: torch.Tensor) -> torch.Tensor:
        """Combine appearance and location.

        Args:
            z: ``(..., D)`` glimpse features.
            glimpse: ``(..., 4)`` glimpse vectors ``[x, y, sx, sy]`` (same leading shape).

        Returns:
            ``(..., D)`` what&where features ``v``.
        """
        if not torch.jit.is_tracing() and (z.shape[-1] != self.feature_dim
                                           or glimpse.shape[-1] != 4):
            raise ValueError(f"expected z (..., {self.feature_dim}) and glimpse (..., 4), got "
                             f"{tuple(z.shape)} and {tuple(glimpse.shape)}")
        return z * self.embed(glimpse)  # (..., D)
