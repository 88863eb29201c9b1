"""External memory and soft assignment of glimpses to workers (paper §4.2, eq. 9-10).

The memory holds the ``G`` glimpses of each of the last ``K`` frames (paper: "K is set to T, the
length of the sequence"; ``K = T = 8``, ``G = 3`` gives 24 slots). Each slot holds one what&where
vector ``m_k``, the frame index ``t_k`` it was written at, and one weight ``w_{c,k}`` per worker
(the assignment probability the glimpse received when it was stored). Slots are kept in
chronological order, newest last: writing appends the frame's ``G`` glimpses and keeps the last
``K G`` entries, so when full the oldest frame is dropped whole. Valid slots are therefore the last
``fill`` ones; masks (never data-dependent Python branches) handle a partially filled or empty
memory, which keeps the step trace-friendly.

Slots store their vector already mapped into the metric space, ``m_k L`` (``D = L Lᵀ``), so a step
projects only its own ``G`` glimpses instead of ``K + G`` vectors: ``φ(v, m_k) = ‖vL - m_kL‖``.

Departures from the released code (DESIGN §2): the memory holds the last ``K`` frames instead of
every past glimpse (the same for clips of ``T = K`` frames, bounded on endless streams); recency
decays with the *elapsed* time ``t - t_k`` (the released code weighted the oldest entries most);
the distance is normalised per sample instead of per batch, with a floor on its range (see
``assign``).
"""

from __future__ import annotations

import torch
from torch import nn

# Floor for squared distances (sqrt has an infinite gradient at 0) and for the min-max range.
_EPS = 1e-12
# Floor on the min-max range relative to the largest distance: distances that agree to within 1%
# are treated as (nearly) equal instead of being stretched over [0, 1], which bounds the gradient
# of the assignment (without it |dp/dv| reached ~1e12 with equal distances).
_RANGE_FLOOR = 1e-2


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
        eye = torch.eye(self.feature_dim, dtype=torch.float64, device=x.device)  # (D, D)
        target = cov.diagonal().mean().clamp_min(_EPS) * eye
        shrunk = (1.0 - shrinkage) * cov + shrinkage * target
        singular = ValueError("covariance is singular; use a larger shrinkage or more features")
        try:
            precision = torch.linalg.inv(shrunk)
        except torch.linalg.LinAlgError as err:
            raise singular from err
        precision = 0.5 * (precision + precision.t())  # symmetrise rounding noise
        factor, info = torch.linalg.cholesky_ex(precision)
        # The checks read data, which a meta tensor (shape-only, e.g. for planning) does not have.
        if factor.device.type != "meta" and (int(info) != 0
                                             or not bool(torch.isfinite(factor).all())):
            raise singular
        self.factor.copy_(factor.to(self.factor.dtype))


class ExternalMemory(nn.Module):
    """Soft assignment from memory reads and FIFO memory writes.

    Args:
        feature_dim: ``D``, size of the what&where vectors.
        num_workers: ``C``.
        num_glimpses: ``G``.
        frames: ``K``, frames kept; the memory has ``slots = K G`` entries.
        decay: ``λ`` of the recency weight ``exp(-λ (t - t_k))``.
        temperature: ``α`` of the softmax over glimpses.
    """

    def __init__(self, feature_dim: int, num_workers: int, num_glimpses: int, frames: int,
                 decay: float, temperature: float) -> None:
        super().__init__()
        if frames < 1 or num_glimpses < 1:
            raise ValueError(f"memory needs frames >= 1 and num_glimpses >= 1, got {frames}, "
                             f"{num_glimpses}")
        self.feature_dim = feature_dim
        self.num_workers = num_workers
        self.num_glimpses = num_glimpses
        self.frames = frames
        self.slots = frames * num_glimpses  # K G entries, whole frames
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
        """Return ``(B, KG)`` bool, true for occupied slots (the last ``fill`` ones)."""
        index = torch.arange(self.slots, device=fill.device)  # (KG,)
        return index.unsqueeze(0) >= (self.slots - fill).unsqueeze(1)  # (B, KG)

    def recency(self, times: torch.Tensor, step: torch.Tensor, fill: torch.Tensor,
                dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Return ``(B, KG)`` weights ``exp(-λ (t - t_k))`` on occupied slots, 0 on empty."""
        # Frame indices are integers, so the elapsed time stays exact on endless streams.
        elapsed = (step.unsqueeze(1) - times).to(dtype)  # (B, KG)
        return torch.exp(-self.decay * elapsed) * self.valid_mask(fill).to(dtype)

    def assign(self, keys: torch.Tensor, weights: torch.Tensor, times: torch.Tensor,
               fill: torch.Tensor, step: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """Soft-assign the current frame's glimpses to the workers (paper eq. 10).

        ``p_{t,c,·} = softmax_g((1/α) Σ_k exp(-λ (t - t_k)) w_{c,k} (1 - φ̂(v_{t,g}, m_k)))``;
        with an empty memory the learned initial distribution is used instead. ``k`` runs over
        the ``KG`` slots (``G`` glimpses of each of the last ``K`` frames).

        Args:
            keys: ``(B, KG, D)`` memory vectors in the metric space, ``m_k L``.
            weights: ``(B, C, KG)`` per-worker slot weights ``w_{c,k}``.
            times: ``(B, KG)`` long, frame index of each slot.
            fill: ``(B,)`` long, number of occupied slots.
            step: ``(B,)`` long, index ``t`` of the current frame.
            query: ``(B, G, D)`` what&where vectors of the current frame in the metric space,
                ``v_{t,g} L`` (``metric.project(v)``).

        Returns:
            ``(B, C, G)`` assignment, summing to 1 over glimpses.
        """
        batch, slots = keys.shape[0], self.slots
        glimpses = query.shape[1]
        valid = self.valid_mask(fill)  # (B, KG)
        # Distances in at least float32: under fp16 autocast the sqrt floor would underflow to 0.
        out_dtype, dtype = query.dtype, torch.promote_types(query.dtype, torch.float32)
        keys, query, weights = keys.to(dtype), query.to(dtype), weights.to(dtype)
        diff = keys.unsqueeze(2) - query.unsqueeze(1)  # (B, KG, G, D)
        phi = torch.sqrt((diff * diff).sum(dim=-1).clamp_min(_EPS))  # (B, KG, G)
        # Min-max normalisation over the occupied (slot, glimpse) pairs of EACH SAMPLE. The paper
        # normalises "within each batch"; per sample keeps a sample's output independent of its
        # batch-mates and makes the clip and step APIs agree. The range is floored at
        # _RANGE_FLOOR times the largest distance (scale-invariant, like the normalisation), so
        # nearly equal distances are not stretched over [0, 1] with an unbounded gradient.
        pair_valid = valid.unsqueeze(2).expand(batch, slots, glimpses)  # (B, KG, G)
        big = torch.finfo(phi.dtype).max
        lo = phi.masked_fill(~pair_valid, big).amin(dim=(1, 2))  # (B,)
        hi = phi.masked_fill(~pair_valid, -big).amax(dim=(1, 2))  # (B,)
        occupied = fill > 0  # (B,)
        lo = torch.where(occupied, lo, torch.zeros_like(lo))
        hi = torch.where(occupied, hi, torch.ones_like(hi))
        span = torch.maximum(hi - lo, _RANGE_FLOOR * hi).clamp_min(_EPS)  # (B,)
        phi_hat = (phi - lo.view(batch, 1, 1)) / span.view(batch, 1, 1)  # (B, KG, G)
        recency = self.recency(times, step, fill, weights.dtype)  # (B, KG), 0 on empty slots
        # Σ_k exp(-λ (t - t_k)) w_{c,k} (1 - φ̂_{k,g}) as a batched matmul (B, C, KG) @ (B, KG, G).
        score = torch.bmm(weights * recency.unsqueeze(1), 1.0 - phi_hat)  # (B, C, G)
        from_memory = torch.softmax(score / self.temperature, dim=-1)  # (B, C, G)
        initial = torch.softmax(self.initial_logits, dim=-1).to(query.dtype)  # (C, G)
        initial = initial.unsqueeze(0).expand_as(from_memory)  # (B, C, G)
        return torch.where(occupied.view(batch, 1, 1), from_memory, initial).to(out_dtype)

    def write(self, keys: torch.Tensor, weights: torch.Tensor, times: torch.Tensor,
              fill: torch.Tensor, step: torch.Tensor, query: torch.Tensor, p: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Append the frame's ``G`` glimpses with ``w_{c,k} = p_{t,c,g}``; drop the oldest frame.

        Args:
            keys: ``(B, KG, D)``; weights: ``(B, C, KG)``; times: ``(B, KG)`` long;
            fill: ``(B,)`` long; step: ``(B,)`` long; query: ``(B, G, D)`` (metric space, as in
            ``assign``); p: ``(B, C, G)``.

        Returns:
            New ``(keys, weights, times, fill)`` with the same shapes.
        """
        slots, glimpses = self.slots, query.shape[1]
        if not torch.jit.is_tracing() and glimpses != self.num_glimpses:
            # Whole frames are dropped only if every write adds exactly G slots.
            raise ValueError(f"write: expected {self.num_glimpses} glimpses, got {glimpses}")
        new_times = step.unsqueeze(1).expand(-1, glimpses)  # (B, G)
        keys = torch.cat([keys, query], dim=1)[:, -slots:]  # (B, KG, D)
        weights = torch.cat([weights, p], dim=2)[:, :, -slots:]  # (B, C, KG)
        times = torch.cat([times, new_times], dim=1)[:, -slots:]  # (B, KG)
        fill = (fill + glimpses).clamp(max=slots)  # (B,)
        return keys, weights, times, fill
