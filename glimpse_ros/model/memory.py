"""External memory and soft assignment of glimpses to workers (paper §4.2, eq. 9-10).

The memory is a FIFO of ``K`` slots; each slot holds one what&where vector ``m_k``, the frame index
``t_k`` it was written at, and one weight ``w_{c,k}`` per worker (the assignment probability the
glimpse received when it was stored). Slots are kept in chronological order, newest last: writing
appends the frame's ``G`` glimpses and keeps the last ``K`` entries, so the oldest slots are
dropped when full. Valid slots are therefore the last ``fill`` ones; masks (never data-dependent
Python branches) handle a partially filled or empty memory, which keeps the step trace-friendly.

Slots store their vector already mapped into the metric space, ``m_k L`` (``D = L Lᵀ``), so a step
projects only its own ``G`` glimpses instead of ``K + G`` vectors: ``φ(v, m_k) = ‖vL - m_kL‖``.

Departures from the released code (DESIGN §2): the memory holds ``K`` slots instead of every past
glimpse; recency decays with the *elapsed* time ``t - t_k`` (the released code weighted the oldest
entries most); the distance is normalised per sample instead of per batch (see ``assign``).
"""

from __future__ import annotations

import torch
from torch import nn

# Floor for squared distances (sqrt has an infinite gradient at 0) and for the min-max range.
_EPS = 1e-12


class MemoryMetric(nn.Module):
    """Learned Mahalanobis-like distance ``φ(x, y) = sqrt((x - y)ᵀ D (x - y))`` (paper eq. 9).

    ``D = L Lᵀ`` is positive semi-definite by construction, whatever the optimiser does to ``L``.
    ``L`` starts as the identity (Euclidean distance) until ``init_metric`` is called.
    """

    def __init__(self, feature_dim: int) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        self.factor = nn.Parameter(torch.eye(feature_dim))  # L, (D, D)

    def matrix(self) -> torch.Tensor:
        """Return ``D = L Lᵀ`` ``(D, D)``."""
        return self.factor @ self.factor.t()

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(..., D)`` vectors to ``x L`` so that ``φ(x, y) = ‖xL - yL‖``."""
        return x @ self.factor  # (..., D)

    @torch.no_grad()
    def init_metric(self, features: torch.Tensor, shrinkage: float = 0.1) -> None:
        """Initialise ``D`` to a shrunk inverse covariance of glimpse features (paper §4.2).

        The covariance is shrunk towards a scaled identity, ``(1 - s) Σ + s (tr Σ / D) I``, so
        that the inverse exists even with fewer samples than dimensions; ``L`` is its Cholesky
        factor.

        Args:
            features: ``(N, D)`` what&where glimpse vectors, ``N >= 2``.
            shrinkage: ``s`` in ``[0, 1]``.
        """
        if features.dim() != 2 or features.shape[1] != self.feature_dim or features.shape[0] < 2:
            raise ValueError(f"features must be (N >= 2, {self.feature_dim}), "
                             f"got {tuple(features.shape)}")
        if not 0.0 <= shrinkage <= 1.0:
            raise ValueError(f"shrinkage must be in [0, 1], got {shrinkage}")
        x = features.detach().to(torch.float64)
        x = x - x.mean(dim=0, keepdim=True)  # (N, D)
        cov = x.t() @ x / (x.shape[0] - 1)  # (D, D)
        target = cov.diagonal().mean().clamp_min(_EPS) * torch.eye(self.feature_dim,
                                                                   dtype=torch.float64)
        shrunk = (1.0 - shrinkage) * cov + shrinkage * target
        singular = ValueError("covariance is singular; use a larger shrinkage or more features")
        try:
            precision = torch.linalg.inv(shrunk)
        except torch.linalg.LinAlgError as err:
            raise singular from err
        precision = 0.5 * (precision + precision.t())  # symmetrise rounding noise
        factor, info = torch.linalg.cholesky_ex(precision)
        if int(info) != 0 or not bool(torch.isfinite(factor).all()):
            raise singular
        self.factor.copy_(factor.to(self.factor.dtype))


class ExternalMemory(nn.Module):
    """Soft assignment from memory reads and FIFO memory writes.

    Args:
        feature_dim: ``D``, size of the what&where vectors.
        num_workers: ``C``.
        num_glimpses: ``G``.
        slots: ``K``.
        decay: ``λ`` of the recency weight ``exp(-λ (t - t_k))``.
        temperature: ``α`` of the softmax over glimpses.
    """

    def __init__(self, feature_dim: int, num_workers: int, num_glimpses: int, slots: int,
                 decay: float, temperature: float) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        self.num_workers = num_workers
        self.num_glimpses = num_glimpses
        self.slots = slots
        self.decay = decay
        self.temperature = temperature
        self.metric = MemoryMetric(feature_dim)
        # Learned assignment for the empty memory (t = 0), one distribution per worker. A uniform
        # start would give every worker the same input and the same stored weights, hence identical
        # assignments forever; a diagonal pattern breaks that symmetry.
        init = torch.zeros(num_workers, num_glimpses)
        init[torch.arange(num_workers), torch.arange(num_workers) % num_glimpses] = 1.0
        self.initial_logits = nn.Parameter(init)  # (C, G)

    def init_metric(self, features: torch.Tensor, shrinkage: float = 0.1) -> None:
        """Initialise the distance from glimpse features; see ``MemoryMetric.init_metric``."""
        self.metric.init_metric(features, shrinkage)

    def valid_mask(self, fill: torch.Tensor) -> torch.Tensor:
        """Return ``(B, K)`` bool, true for occupied slots (the last ``fill`` ones)."""
        index = torch.arange(self.slots, device=fill.device)  # (K,)
        return index.unsqueeze(0) >= (self.slots - fill).unsqueeze(1)  # (B, K)

    def recency(self, times: torch.Tensor, step: torch.Tensor, fill: torch.Tensor,
                dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Return ``(B, K)`` weights ``exp(-λ (t - t_k))`` on occupied slots, 0 on empty ones."""
        # Frame indices are integers, so the elapsed time stays exact on endless streams.
        elapsed = (step.unsqueeze(1) - times).to(dtype)  # (B, K)
        return torch.exp(-self.decay * elapsed) * self.valid_mask(fill).to(dtype)

    def assign(self, keys: torch.Tensor, weights: torch.Tensor, times: torch.Tensor,
               fill: torch.Tensor, step: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """Soft-assign the current frame's glimpses to the workers (paper eq. 10).

        ``p_{t,c,·} = softmax_g((1/α) Σ_k exp(-λ (t - t_k)) w_{c,k} (1 - φ̂(v_{t,g}, m_k)))``;
        with an empty memory the learned initial distribution is used instead.

        Args:
            keys: ``(B, K, D)`` memory vectors in the metric space, ``m_k L``.
            weights: ``(B, C, K)`` per-worker slot weights ``w_{c,k}``.
            times: ``(B, K)`` long, frame index of each slot.
            fill: ``(B,)`` long, number of occupied slots.
            step: ``(B,)`` long, index ``t`` of the current frame.
            query: ``(B, G, D)`` what&where vectors of the current frame in the metric space,
                ``v_{t,g} L`` (``metric.project(v)``).

        Returns:
            ``(B, C, G)`` assignment, summing to 1 over glimpses.
        """
        batch, slots = keys.shape[0], self.slots
        glimpses = query.shape[1]
        valid = self.valid_mask(fill)  # (B, K)
        # Distances in at least float32: under fp16 autocast the sqrt floor would underflow to 0.
        out_dtype, dtype = query.dtype, torch.promote_types(query.dtype, torch.float32)
        keys, query, weights = keys.to(dtype), query.to(dtype), weights.to(dtype)
        diff = keys.unsqueeze(2) - query.unsqueeze(1)  # (B, K, G, D)
        phi = torch.sqrt((diff * diff).sum(dim=-1).clamp_min(_EPS))  # (B, K, G)
        # Min-max normalisation over the occupied (slot, glimpse) pairs of EACH SAMPLE. The paper
        # normalises "within each batch"; per sample keeps a sample's output independent of its
        # batch-mates and makes the clip and step APIs agree.
        pair_valid = valid.unsqueeze(2).expand(batch, slots, glimpses)  # (B, K, G)
        big = torch.finfo(phi.dtype).max
        lo = phi.masked_fill(~pair_valid, big).amin(dim=(1, 2))  # (B,)
        hi = phi.masked_fill(~pair_valid, -big).amax(dim=(1, 2))  # (B,)
        occupied = fill > 0  # (B,)
        lo = torch.where(occupied, lo, torch.zeros_like(lo))
        hi = torch.where(occupied, hi, torch.ones_like(hi))
        phi_hat = (phi - lo.view(batch, 1, 1)) / (hi - lo).clamp_min(_EPS).view(batch, 1, 1)
        recency = self.recency(times, step, fill, weights.dtype)  # (B, K), 0 on empty slots
        # Σ_k exp(-λ (t - t_k)) w_{c,k} (1 - φ̂_{k,g}) as a batched matmul (B, C, K) @ (B, K, G).
        score = torch.bmm(weights * recency.unsqueeze(1), 1.0 - phi_hat)  # (B, C, G)
        from_memory = torch.softmax(score / self.temperature, dim=-1)  # (B, C, G)
        initial = torch.softmax(self.initial_logits, dim=-1).to(query.dtype)  # (C, G)
        initial = initial.unsqueeze(0).expand_as(from_memory)  # (B, C, G)
        return torch.where(occupied.view(batch, 1, 1), from_memory, initial).to(out_dtype)

    def write(self, keys: torch.Tensor, weights: torch.Tensor, times: torch.Tensor,
              fill: torch.Tensor, step: torch.Tensor, query: torch.Tensor, p: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Append the frame's glimpses with weights ``w_{c,k} = p_{t,c,g}``, dropping the oldest.

        Args:
            keys: ``(B, K, D)``; weights: ``(B, C, K)``; times: ``(B, K)`` long;
            fill: ``(B,)`` long; step: ``(B,)`` long; query: ``(B, G, D)`` (metric space, as in
            ``assign``); p: ``(B, C, G)``.

        Returns:
            New ``(keys, weights, times, fill)`` with the same shapes.
        """
        slots, glimpses = self.slots, query.shape[1]
        new_times = step.unsqueeze(1).expand(-1, glimpses)  # (B, G)
        keys = torch.cat([keys, query], dim=1)[:, -slots:]  # (B, K, D)
        weights = torch.cat([weights, p], dim=2)[:, :, -slots:]  # (B, C, K)
        times = torch.cat([times, new_times], dim=1)[:, -slots:]  # (B, K)
        fill = (fill + glimpses).clamp(max=slots)  # (B,)
        return keys, weights, times, fill
