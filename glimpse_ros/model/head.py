"""The recurrent Glimpse Clouds head: glimpse attention, memory, workers (paper §3.2-4.3).

One frame ``t`` (``step``):

1. ``r_t = Σ_c r_{t-1,c}`` (eq. 7, the workers' global state).
2. For ``g = 1..G``: ``h = Ω(h, [z_{g-1}, r_t])`` (eq. 2), ``l_g = W_l [h, c_t]`` (eq. 3; or,
   with ``glimpse_locator: map``, a soft arg-max over ``Z_t``'s cells queried by ``[h, c_t]``,
   ``map_locator.py``),
   ``z_g = GAP(crop(Z_t, l_g))`` (eq. 1, 4; ``l_g`` in input-crop coordinates, mapped onto
   ``Z_t`` through the backbone's receptive fields, see ``glimpse.py``); then
   ``v_g = z_g ⊙ Λ(l_g)`` (eq. 5) for all ``g`` at once. ``h`` and ``z_{g-1}`` run across frames
   and are never reset inside a sequence (``z_0 = 0`` at the start).
3. ``p_{t,c,g}`` from the external memory (eq. 9-10), workers
   ``r_{t,c} = Ψ_c(r_{t-1,c}, Σ_g p v_g)`` (eq. 6, 8), memory write,
   logits ``Σ_c W_c r_{t,c}`` (eq. 11-12).

Ablation switches (``ModelConfig``): ``glimpse_locations`` ``random`` / ``oracle`` replace the
locator's boxes (``oracle``: boxes given by the caller); ``glimpse_pooling: sum`` replaces the
memory's soft assignment by ``p = 1`` into a single worker (Table 3, "Σ Glimpses + GRU": the
worker GRU integrates ``Σ_g v_g`` over time) and leaves the memory untouched.

``forward`` over a clip is a loop over ``step`` from ``initial_state``.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from glimpse_ros.config import ModelConfig
from glimpse_ros.model.glimpse import GlimpseLocator, glimpse_features, random_glimpses
from glimpse_ros.model.glimpse_rnn import GlimpseRNN
from glimpse_ros.model.map_locator import MapLocator
from glimpse_ros.model.memory import ExternalMemory
from glimpse_ros.model.state import HeadOutput, HeadState, StepOutput
from glimpse_ros.model.where import WhatWhere
from glimpse_ros.model.workers import Workers

__all__ = ["GlimpseCloudsHead", "HeadOutput", "HeadState", "StepOutput"]


class GlimpseCloudsHead(nn.Module):
    """Recurrent head mapping backbone outputs ``(Z, c)`` to glimpses and class logits."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.feature_dim = cfg.feature_dim
        self.context_dim = cfg.context_dim
        self.num_glimpses = cfg.num_glimpses
        self.num_workers = cfg.num_workers
        # Ω runs over glimpses; its input is [z_{g-1}, r_t] (an nn.GRUCell, see glimpse_rnn.py).
        self.glimpse_rnn = GlimpseRNN(cfg.feature_dim, cfg.worker_hidden, cfg.glimpse_hidden)
        # Eq. 3 on [h, c_t] ("context"), or a soft arg-max over the layer4 map ("map").
        self.locator: GlimpseLocator | MapLocator
        if cfg.glimpse_locator == "map":
            self.locator = MapLocator(cfg.feature_dim, cfg.glimpse_hidden, cfg.context_dim)
        else:
            self.locator = GlimpseLocator(cfg.glimpse_hidden, cfg.context_dim)
        # Ablation switch (ModelConfig.glimpse_locations): the locator stays (same weights layout)
        # but its output is replaced by random boxes from this generator.
        self.random_locations: Optional[torch.Generator] = None
        if cfg.glimpse_locations == "random":
            self.random_locations = torch.Generator().manual_seed(cfg.glimpse_seed)
        self.what_where = WhatWhere(cfg.feature_dim, cfg.where_hidden)
        self.memory = ExternalMemory(cfg.feature_dim, cfg.num_workers, cfg.num_glimpses,
                                     cfg.memory_slots, cfg.memory_decay, cfg.assign_temperature)
        self.workers = Workers(cfg.feature_dim, cfg.worker_hidden, cfg.num_workers,
                               cfg.num_classes)

    def initial_state(self, batch: int, device: Optional[torch.device] = None,
                      dtype: Optional[torch.dtype] = None) -> HeadState:
        """Return the state before the first frame: zeros everywhere, empty memory.

        Args:
            batch: number of independent streams ``B``.
            device: defaults to the parameters' device.
            dtype: floating dtype, defaults to the parameters' dtype.
        """
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        param = self.memory.initial_logits  # a plain parameter, present even in quantised copies
        device = param.device if device is None else torch.device(device)
        dtype = param.dtype if dtype is None else dtype
        cfg = self.cfg
        slots = self.memory.slots  # K frames x G glimpses
        zeros = dict(device=device, dtype=dtype)
        return HeadState(
            h=torch.zeros(batch, cfg.glimpse_hidden, **zeros),
            z_prev=torch.zeros(batch, cfg.feature_dim, **zeros),
            r=torch.zeros(batch, cfg.num_workers, cfg.worker_hidden, **zeros),
            memory_values=torch.zeros(batch, slots, cfg.feature_dim, **zeros),
            memory_weights=torch.zeros(batch, cfg.num_workers, slots, **zeros),
            memory_times=torch.zeros(batch, slots, dtype=torch.long, device=device),
            memory_fill=torch.zeros(batch, dtype=torch.long, device=device),
            step=torch.zeros(batch, dtype=torch.long, device=device),
        )

    def _check_frame(self, state: HeadState, z_t: torch.Tensor, c_t: torch.Tensor) -> None:
        """Raise ``ValueError`` when a frame does not match the configuration or the state."""
        if torch.jit.is_tracing():  # traced shapes are constants; checking would only warn
            return
        if z_t.dim() != 4 or z_t.shape[1] != self.feature_dim:
            raise ValueError(f"z_t must be (B, {self.feature_dim}, h, w), got {tuple(z_t.shape)}")
        if c_t.dim() != 2 or c_t.shape[1] != self.context_dim:
            raise ValueError(f"c_t must be (B, {self.context_dim}), got {tuple(c_t.shape)}")
        if not (z_t.shape[0] == c_t.shape[0] == state.h.shape[0]):
            raise ValueError(f"batch mismatch: z_t {z_t.shape[0]}, c_t {c_t.shape[0]}, "
                             f"state {state.h.shape[0]}")

    def input_size(self, input_size: Optional[tuple[int, int]] = None) -> tuple[int, int]:
        """``(H, W)`` of the network input the features come from (default: the crop size)."""
        if input_size is None:
            return (self.cfg.crop_size, self.cfg.crop_size)
        return (int(input_size[0]), int(input_size[1]))

    def step(self, state: HeadState, z_t: torch.Tensor, c_t: torch.Tensor,
             input_size: Optional[tuple[int, int]] = None,
             given: Optional[torch.Tensor] = None) -> tuple[HeadState, StepOutput]:
        """Process one frame.

        Args:
            state: state after the previous frame (``initial_state`` for the first).
            z_t: ``(B, D, h, w)`` layer4 feature map of the frame.
            c_t: ``(B, Dc)`` context vector of the frame.
            input_size: ``(H, W)`` of the input crop ``z_t`` was computed from; glimpses are in
                its coordinates. Defaults to ``cfg.crop_size`` square.
            given: ``(B, G, 4)`` glimpses to read instead of the locator's, exactly when
                ``glimpse_locations`` is ``oracle``.

        Returns:
            ``(new_state, outputs)``.
        """
        self._check_frame(state, z_t, c_t)
        size = self.input_size(input_size)
        r_sum = state.r.sum(dim=1)  # (B, Hw): r_t = Σ_c r_{t-1,c}
        h, z = state.h, state.z_prev
        # r_t is constant over the frame: its share of Ω's input gates is computed once.
        gates = self.glimpse_rnn.frame_gates(r_sum)  # (B, 3Hg)
        cfg = self.cfg
        if (given is None) == (cfg.glimpse_locations == "oracle"):
            raise ValueError("glimpses are given exactly when model.glimpse_locations is oracle "
                             f"(it is {cfg.glimpse_locations!r})")
        if given is not None and given.shape != (z_t.shape[0], self.num_glimpses, 4):
            raise ValueError(f"given glimpses must be ({z_t.shape[0]}, {self.num_glimpses}, 4), "
                             f"got {tuple(given.shape)}")
        glimpses, features = [], []
        frame = self.locator.frame(z_t, size)  # the map locator's keys, once per frame
        for g in range(self.num_glimpses):
            h = self.glimpse_rnn.cell(z, h, gates)  # (B, Hg): Ω(h, [z, r_t])
            loc = self.locator(h, c_t, frame)  # (B, 4)
            if self.random_locations is not None:
                loc = random_glimpses(loc.shape[0], self.random_locations).to(loc)  # (B, 4)
            elif given is not None:
                loc = given[:, g].to(loc)  # (B, 4)
            # No detach here: the gradient reaches W_l through the crop (the released code cut it).
            z = glimpse_features(z_t, loc, size, border=cfg.glimpse_border)  # (B, D)
            glimpses.append(loc)
            features.append(z)
        locs = torch.stack(glimpses, dim=1)  # (B, G, 4)
        # What&where of all G glimpses at once: Λ's weights are read once per frame, not G times.
        v = self.what_where(torch.stack(features, dim=1), locs)  # (B, G, D)

        mem = self.memory
        if cfg.glimpse_pooling == "sum":  # one worker fed Σ_g v_g; the memory is not used
            p = v.new_ones(v.shape[0], self.num_workers, self.num_glimpses)  # (B, 1, G)
            r, q = self.workers(v, p, state.r)  # (B, 1, Hw), (B, 1, N)
            values, weights = state.memory_values, state.memory_weights
            times, fill = state.memory_times, state.memory_fill
        else:
            query = mem.metric.project(v)  # (B, G, D): v L, the memory stores this space
            p = mem.assign(state.memory_values, state.memory_weights, state.memory_times,
                           state.memory_fill, state.step, query)  # (B, C, G)
            r, q = self.workers(v, p, state.r)  # (B, C, Hw), (B, C, N)
            values, weights, times, fill = mem.write(state.memory_values, state.memory_weights,
                                                     state.memory_times, state.memory_fill,
                                                     state.step, query, p)
        new_state = HeadState(h=h, z_prev=z, r=r, memory_values=values, memory_weights=weights,
                              memory_times=times, memory_fill=fill, step=state.step + 1)
        out = StepOutput(logits=q.sum(dim=1), worker_logits=q, glimpses=locs, assignment=p,
                         vectors=v)
        return new_state, out

    def forward(self, Z: torch.Tensor, c: torch.Tensor,  # noqa: N803 (paper's Z)
                input_size: Optional[tuple[int, int]] = None,
                given: Optional[torch.Tensor] = None) -> HeadOutput:
        """Run a clip from a fresh state (identical to stepping its ``T`` frames).

        Args:
            Z: ``(B, D, T, h, w)`` layer4 features.
            c: ``(B, T, Dc)`` context vectors.
            input_size: ``(H, W)`` of the input clip (see ``step``).
            given: ``(B, T, G, 4)`` glimpses of an ``oracle`` model (see ``step``).

        Returns:
            ``HeadOutput`` with per-frame outputs stacked on dim 1.
        """
        if Z.dim() != 5 or c.dim() != 3 or Z.shape[2] != c.shape[1] or Z.shape[0] != c.shape[0]:
            raise ValueError(f"expected Z (B, D, T, h, w) and c (B, T, Dc) with matching B, T; "
                             f"got {tuple(Z.shape)} and {tuple(c.shape)}")
        state = self.initial_state(Z.shape[0], device=Z.device, dtype=Z.dtype)
        outputs = []
        for t in range(Z.shape[2]):
            state, out = self.step(state, Z[:, :, t], c[:, t], input_size,
                                   None if given is None else given[:, t])
            outputs.append(out)
        step_logits = torch.stack([o.logits for o in outputs], dim=1)  # (B, T, N)
        return HeadOutput(
            logits=step_logits.mean(dim=1),  # (B, N)
            step_logits=step_logits,
            worker_logits=torch.stack([o.worker_logits for o in outputs], dim=1),  # (B, T, C, N)
            glimpses=torch.stack([o.glimpses for o in outputs], dim=1),  # (B, T, G, 4)
            assignment=torch.stack([o.assignment for o in outputs], dim=1),  # (B, T, C, G)
            vectors=torch.stack([o.vectors for o in outputs], dim=1),  # (B, T, G, D)
        )
