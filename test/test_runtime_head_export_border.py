"""The exported head step agrees with the eager head under both glimpse border rules.

The locator's bias is set so that the glimpses sit past the first / last layer4 cell centres
(centres near +-0.9, large boxes), where ``clamp`` and ``zeros`` differ; the engines (ONNX
Runtime, OpenVINO) run the graph with their own kernels. Tolerances as in
``test_runtime_head_export.py`` (1e-5, relative to the magnitude for feature-scale tensors).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from glimpse_ros.config import ModelConfig
from glimpse_ros.model.head import GlimpseCloudsHead
from glimpse_ros.runtime import head_graph as hg
from glimpse_ros.runtime.export.head import export_head
from glimpse_ros.runtime.head_engine import HeadStepEngine

# 3x3 layer4 map; the paper's locator, whose bias places the glimpses on the borders here.
CFG = ModelConfig.small(num_classes=5, crop_size=96, memory_slots=3, glimpse_locator="context")
BACKENDS = ["onnxruntime", "openvino"]


def _head(border: str) -> GlimpseCloudsHead:
    """A head whose glimpses land on the map's borders (seeded, same weights for both rules)."""
    torch.manual_seed(0)
    head = GlimpseCloudsHead(dataclasses.replace(CFG, glimpse_border=border)).eval()
    with torch.no_grad():
        head.locator.linear.weight.mul_(0.2)
        head.locator.linear.bias.copy_(torch.tensor([1.5, -1.5, 1.0, 1.0]))  # x ~ +0.9, y ~ -0.9
        head.memory.initial_logits.normal_()
    return head


def _frames(n: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(1, CFG.feature_dim, 3, 3, generator=gen).relu() * 3.0,
             torch.randn(1, CFG.context_dim, generator=gen).relu()) for _ in range(n)]


def _close(name: str, got: np.ndarray, ref: torch.Tensor) -> None:
    ref_np = ref.detach().numpy()
    if not np.issubdtype(ref_np.dtype, np.floating):
        np.testing.assert_array_equal(got & 0xFFFFFFFF, ref_np & 0xFFFFFFFF, err_msg=name)
        return
    scale = max(1.0, float(np.abs(ref_np).max())) if name in ("z_prev", "memory_values") else 1.0
    err = float(np.abs(got.astype(np.float64) - ref_np).max())
    assert err <= 1e-5 * scale, f"{name}: max |diff| {err:.3g}"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("border", ["clamp", "zeros"])
def test_exported_head_matches_eager_at_the_borders(border: str, backend: str,
                                                    tmp_path) -> None:
    """6 frames (memory full from frame 3): every output and state tensor agrees."""
    pytest.importorskip(backend)
    head = _head(border)
    engine = HeadStepEngine(export_head(head, tmp_path / "head.onnx"), backend, threads=1)
    state = head.initial_state(1)
    for z, c in _frames(6, seed=3):
        with torch.no_grad():
            state, out = head.step(state, z, c)
        got = engine.step(z.numpy(), c.numpy())
        # The glimpses reach past the cell centres (pixel 0 and 64 of 96) on both sides.
        assert float(out.glimpses[0, :, 0].add(out.glimpses[0, :, 2]).max()) > 64 * 2 / 95 - 1
        assert float(out.glimpses[0, :, 1].sub(out.glimpses[0, :, 3]).min()) < -1.0
        _close("logits", got.logits, out.logits)
        _close("glimpses", got.glimpses, out.glimpses)
        _close("assignment", got.assignment, out.assignment)
        for field in hg.STATE_FIELDS:
            _close(field, engine.state[field], getattr(state, field))


@torch.no_grad()
def test_the_two_rules_differ_on_these_glimpses() -> None:
    """The comparison above is not vacuous: clamp and zeros give different logits here."""
    outs = {}
    for border in ("clamp", "zeros"):
        head = _head(border)
        state = head.initial_state(1)
        for z, c in _frames(3, seed=3):
            state, out = head.step(state, z, c)
        outs[border] = out.logits
    assert float((outs["clamp"] - outs["zeros"]).abs().max()) > 1e-3
