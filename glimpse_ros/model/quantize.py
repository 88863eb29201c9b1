"""Inference copies of the recurrent head (``RecognizerConfig.head_precision``: fp32 | int8).

``prepare_head(head, "fp32")`` is exact: it only stores the glimpse GRU's input matrix as two
contiguous blocks (``W_ih[:, :D]`` for ``z``, ``W_ih[:, D:]`` for ``r_t``; see ``glimpse_rnn.py``).
The training module multiplies strided views of one ``(3Hg, D + Hw)`` matrix, which this CPU's
BLAS streams more slowly than a contiguous matrix at batch 1; the copy makes the per-frame ``r_t``
split pay off (measured ~5% of the ResNet-50 head step). ``prepare_head(head, "int8")`` is the
quantised copy described below.

At batch 1 the head step is bound by memory bandwidth: every frame reads ~186 MB of float32
weights for the paper-size model, ~90% of them in the GRUs (the glimpse GRU ``G`` times, the ``C``
worker GRUs once). ``quantize_head`` returns a copy in which the GRUs' matrices are stored as int8
with one scale per output row (symmetric, per-channel) and applied with torch's dynamically
quantised linear kernel (the activations are quantised per call, per tensor), so they read 4x
fewer bytes.

The memory metric factor ``L`` (``D x D``) is NOT made int8: the distances of eq. 9 are min-max
normalised over the memory, so errors in ``vL`` move the assignment. It is stored as float16 and
applied with torch's fp16-weight kernel (float32 arithmetic, relative error ~2e-4), which halves
its bytes and, for the ``G`` rows of a frame, is also faster than the float32 BLAS product here.
Kept in float32 (small, and measured to matter for accuracy): the worker classifiers (their
errors reach the logits undamped), the what&where embedding (it gates every glimpse feature), the
glimpse location head, biases, and every non-matrix operation. The copy is for inference only.

The int8 path is a departure from the paper (an approximation, opt-in, default off); its
deviation from float32 is measured by the benchmark and bounded in the tests.
"""

from __future__ import annotations

import copy
import warnings
from typing import Optional

import torch
from torch import nn
from torch.ao.nn.quantized import dynamic as nnqd

from glimpse_ros.model.glimpse_rnn import GlimpseRNN, gru_update
from glimpse_ros.model.head import GlimpseCloudsHead


def quantized_engine_available() -> bool:
    """Whether torch has a quantised CPU engine (fbgemm/x86 on x86-64, qnnpack on ARM)."""
    return any(e != "none" for e in torch.backends.quantized.supported_engines)


def int8_linear(weight: torch.Tensor, bias: Optional[torch.Tensor]) -> nnqd.Linear:
    """Dynamically quantised ``Linear`` with per-output-row symmetric int8 weights.

    Args:
        weight: ``(out, in)`` float weights (a view is fine; it is copied).
        bias: ``(out,)`` or None; kept in float32.
    """
    w = weight.detach().to(torch.float32).contiguous()  # (out, in)
    scales = (w.abs().amax(dim=1) / 127.0).clamp_min(1e-12).to(torch.float64)  # (out,)
    zero_points = torch.zeros(w.shape[0], dtype=torch.long)
    # torch >= 2.10 marks quantised tensor creation as deprecated (in favour of torchao, which is
    # not a dependency); the kernels themselves are current. Silence only that warning.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, message=".*quantize")
        warnings.filterwarnings("ignore", category=UserWarning, message=".*deprecated")
        qweight = torch.quantize_per_channel(w, scales, zero_points, 0, torch.qint8)
        module = nnqd.Linear(w.shape[1], w.shape[0], dtype=torch.qint8)
        module.set_weight_bias(qweight, None if bias is None
                               else bias.detach().to(torch.float32).clone())
    return module


class Fp16MetricProjection(nn.Module):
    """``x -> x L`` with ``L`` stored as float16 (stands in for ``MemoryMetric`` at inference)."""

    def __init__(self, factor: torch.Tensor) -> None:
        super().__init__()
        self.feature_dim = factor.shape[0]
        weight = factor.detach().to(torch.float32).t().contiguous()  # (D, D): x L = x (Lᵀ)ᵀ
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning)
            self.linear = nnqd.Linear(self.feature_dim, self.feature_dim, bias_=False,
                                      dtype=torch.float16)
            self.linear.set_weight_bias(weight, None)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(..., D)`` vectors to ``x L`` (see ``MemoryMetric.project``)."""
        flat = x.reshape(-1, self.feature_dim)  # (prod(...), D)
        return self.linear(flat).reshape(x.shape)  # (..., D)


class Fp32GlimpseRNN(nn.Module):
    """``GlimpseRNN`` with contiguous input blocks; the same float operations, inference only."""

    def __init__(self, rnn: GlimpseRNN) -> None:
        super().__init__()
        d = self.feature_dim = rnn.feature_dim
        self.register_buffer("w_z", rnn.weight_ih.detach()[:, :d].contiguous())  # (3Hg, D)
        self.register_buffer("w_r", rnn.weight_ih.detach()[:, d:].contiguous())  # (3Hg, Hw)
        self.register_buffer("w_hh", rnn.weight_hh.detach())  # (3Hg, Hg)
        self.register_buffer("b_ih", rnn.bias_ih.detach())  # (3Hg,)
        self.register_buffer("b_hh", rnn.bias_hh.detach())  # (3Hg,)

    def frame_gates(self, r_sum: torch.Tensor) -> torch.Tensor:
        """``(B, Hw) -> (B, 3Hg)``: ``W_r r_t + b_ih``."""
        return nn.functional.linear(r_sum, self.w_r, self.b_ih)

    def cell(self, z: torch.Tensor, h: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
        """``(B, D), (B, Hg), (B, 3Hg) -> (B, Hg)``, as ``GlimpseRNN.cell``."""
        gi = nn.functional.linear(z, self.w_z) + gates  # (B, 3Hg)
        return gru_update(gi, nn.functional.linear(h, self.w_hh, self.b_hh), h)  # (B, Hg)


class Int8GRUCell(nn.Module):
    """Inference-only ``nn.GRUCell`` with int8 weight matrices (same call signature)."""

    def __init__(self, cell: nn.GRUCell) -> None:
        super().__init__()
        self.input = int8_linear(cell.weight_ih, cell.bias_ih)  # (3H, in)
        self.hidden = int8_linear(cell.weight_hh, cell.bias_hh)  # (3H, H)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """``(B, in), (B, H) -> (B, H)``."""
        return gru_update(self.input(x), self.hidden(h), h)


class Int8GlimpseRNN(nn.Module):
    """Int8 counterpart of ``GlimpseRNN`` (``frame_gates`` per frame, ``cell`` per glimpse)."""

    def __init__(self, rnn: GlimpseRNN) -> None:
        super().__init__()
        d = rnn.feature_dim
        self.feature_dim = d
        self.input_z = int8_linear(rnn.weight_ih[:, :d], None)  # (3Hg, D)
        self.input_r = int8_linear(rnn.weight_ih[:, d:], rnn.bias_ih)  # (3Hg, Hw)
        self.hidden = int8_linear(rnn.weight_hh, rnn.bias_hh)  # (3Hg, Hg)

    def frame_gates(self, r_sum: torch.Tensor) -> torch.Tensor:
        """``(B, Hw) -> (B, 3Hg)``: ``W_r r_t + b_ih``."""
        return self.input_r(r_sum)

    def cell(self, z: torch.Tensor, h: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
        """``(B, D), (B, Hg), (B, 3Hg) -> (B, Hg)``."""
        return gru_update(self.input_z(z) + gates, self.hidden(h), h)


def _shallow_copy(head: GlimpseCloudsHead) -> GlimpseCloudsHead:
    """Copy the module tree but share the parameter tensors (no second copy of the weights)."""
    memo = {id(p): p for p in head.parameters()}
    memo.update({id(b): b for b in head.buffers()})
    return copy.deepcopy(head, memo).eval()


@torch.no_grad()
def prepare_head(head: GlimpseCloudsHead, precision: str = "fp32") -> GlimpseCloudsHead:
    """Return the inference copy of ``head`` for ``precision`` ("fp32" exact, or "int8").

    The copy shares the float parameters it does not replace with ``head``; ``head`` itself is
    not modified, but must not be trained while the copy is in use.
    """
    if precision == "int8":
        return quantize_head(head)
    if precision != "fp32":
        raise ValueError(f"head precision must be fp32 or int8, got {precision!r}")
    prepared = _shallow_copy(head)
    prepared.glimpse_rnn = Fp32GlimpseRNN(head.glimpse_rnn)
    return prepared


@torch.no_grad()
def quantize_head(head: GlimpseCloudsHead) -> GlimpseCloudsHead:
    """Return an int8 inference copy of ``head`` (``head`` itself is not modified).

    Raises:
        ValueError: torch has no quantised CPU engine on this machine.
    """
    if not quantized_engine_available():
        raise ValueError("int8 head: this torch build has no quantized CPU engine "
                         f"(supported: {torch.backends.quantized.supported_engines})")
    quantized = _shallow_copy(head)
    quantized.glimpse_rnn = Int8GlimpseRNN(head.glimpse_rnn)
    quantized.workers.cells = nn.ModuleList(Int8GRUCell(cell) for cell in head.workers.cells)
    quantized.memory.metric = Fp16MetricProjection(head.memory.metric.factor)
    return quantized


__all__ = ["Fp16MetricProjection", "Fp32GlimpseRNN", "Int8GRUCell", "Int8GlimpseRNN",
           "int8_linear", "prepare_head", "quantize_head", "quantized_engine_available"]
