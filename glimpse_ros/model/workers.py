"""Distributed soft-tracking workers (paper §4.1, eq. 6-8) and their classifiers (§4.3, eq. 11)."""

from __future__ import annotations

import torch
from torch import nn


class Workers(nn.Module):
    """``C`` independent GRUs ``Ψ_c`` with one linear classifier ``q_c = W_c r_c`` each.

    Workers share no parameters, and each is fed its OWN previous state ``r_{t-1,c}`` (the released
    code fed worker 0's state to every worker; we do not).

    Args:
        input_dim: size of the worker input ``ṽ_{t,c}`` (the what&where feature size).
        hidden_dim: worker state size.
        num_workers: ``C``.
        num_classes: ``N``.
    """

    def __init__(self, input_dim: int, hidden_dim: int, num_workers: int,
                 num_classes: int) -> None:
        super().__init__()
        self.num_workers = num_workers
        self.hidden_dim = hidden_dim
        self.cells = nn.ModuleList(nn.GRUCell(input_dim, hidden_dim) for _ in range(num_workers))
        self.classifiers = nn.ModuleList(nn.Linear(hidden_dim, num_classes)
                                         for _ in range(num_workers))

    def forward(self, v: torch.Tensor, p: torch.Tensor, r: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Advance every worker by one frame.

        Args:
            v: ``(B, G, D)`` what&where vectors of the frame.
            p: ``(B, C, G)`` soft assignment of glimpses to workers.
            r: ``(B, C, Hw)`` previous worker states.

        Returns:
            ``(r_new (B, C, Hw), q (B, C, N))``: new states and per-worker logits.
        """
        if not torch.jit.is_tracing() and (p.shape[1] != self.num_workers
                                           or r.shape[1] != self.num_workers):
            raise ValueError(f"expected {self.num_workers} workers, got p {tuple(p.shape)}, "
                             f"r {tuple(r.shape)}")
        inputs = torch.bmm(p, v)  # (B, C, D): ṽ_{t,c} = Σ_g p_{t,c,g} v_{t,g}
        states, logits = [], []
        for c, (cell, classifier) in enumerate(zip(self.cells, self.classifiers)):
            state = cell(inputs[:, c], r[:, c])  # (B, Hw)
            states.append(state)
            logits.append(classifier(state))  # (B, N)
        return torch.stack(states, dim=1), torch.stack(logits, dim=1)
