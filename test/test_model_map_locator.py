"""The map locator (``glimpse_locator: map``): cell centres, soft arg-max, gradients, head, export.

References are independent of ``map_locator.py``: cell centres from the stride-32 closed form
(layer4 cell ``j`` centred at input pixel ``32 j``), the soft arg-max recomputed in float64 NumPy
from the module's weights, and a hand-made map whose one bright cell must attract the glimpse.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from glimpse_ros.config import ModelConfig
from glimpse_ros.model.glimpse_clouds import GlimpseClouds
from glimpse_ros.model.head import GlimpseCloudsHead
from glimpse_ros.model.losses import glimpse_loss
from glimpse_ros.model.map_locator import MapLocator, cell_centres
from glimpse_ros.runtime import head_graph as hg
from glimpse_ros.runtime.export.head import export_head
from glimpse_ros.runtime.head_engine import HeadStepEngine

CFG = ModelConfig.small(num_classes=5, crop_size=96, memory_slots=3, glimpse_locator="map")


@pytest.mark.parametrize("size,cells", [(112, 4), (96, 3), (224, 7)])
def test_cell_centres_are_the_stride_32_pixels(size: int, cells: int) -> None:
    """Cell (i, j) sits at input pixel (32 i, 32 j): u = 2 * 32 j / (S - 1) - 1."""
    got = cell_centres(cells, cells, (size, size)).numpy()
    expected = [(2 * 32 * j / (size - 1) - 1, 2 * 32 * i / (size - 1) - 1)
                for i in range(cells) for j in range(cells)]
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_cell_centres_of_a_non_square_input() -> None:
    """Rows follow the height, columns the width."""
    got = cell_centres(2, 3, (64, 96)).numpy()
    assert got.shape == (6, 2)
    np.testing.assert_allclose(got[4], [2 * 32 / 95 - 1, 2 * 32 / 63 - 1], atol=1e-6)


def test_cell_centres_are_a_new_tensor_each_call() -> None:
    """The geometry is cached per size; a caller changing its copy changes no later answer."""
    first = cell_centres(3, 3, (96, 96), dtype=torch.float64)
    first.add_(1.0)
    again = cell_centres(3, 3, (96, 96), dtype=torch.float64)
    np.testing.assert_allclose(again.numpy(), first.numpy() - 1.0, atol=1e-12)


@torch.no_grad()
def test_one_bright_cell_draws_the_glimpse_to_its_centre() -> None:
    """Keys read channel 0 only; the one cell lit there gets all the attention."""
    loc = MapLocator(feature_dim=4, hidden_dim=3, context_dim=2, key_dim=8)
    for p in loc.parameters():
        p.zero_()
    loc.key.weight[0, 0] = 1.0
    loc.query.bias[0] = 100.0
    loc.scale.bias.copy_(torch.tensor([0.0, 2.0]))
    z = torch.zeros(1, 4, 4, 4)
    z[0, 0, 2, 1] = 10.0  # row 2, column 1 of a 112 crop's 4x4 map
    out = loc(torch.randn(1, 3), torch.randn(1, 2), loc.frame(z, (112, 112)))
    expected = [2 * 32 / 111 - 1, 2 * 64 / 111 - 1, 0.5, 1 / (1 + np.exp(-2.0))]
    np.testing.assert_allclose(out[0].numpy(), expected, atol=1e-5)


@torch.no_grad()
def test_soft_argmax_matches_a_float64_recomputation() -> None:
    """Random weights and map: the centre is Σ softmax(k · q / 8) p, recomputed in NumPy."""
    torch.manual_seed(1)
    loc = MapLocator(feature_dim=6, hidden_dim=5, context_dim=3)
    z, h, c = torch.randn(2, 6, 3, 3) * 3, torch.randn(2, 5), torch.randn(2, 3)
    out = loc(h, c, loc.frame(z, (96, 96))).numpy()
    w = {k: v.double().numpy() for k, v in loc.state_dict().items()}
    cells = z.double().numpy().reshape(2, 6, 9).transpose(0, 2, 1)       # (B, 9, D)
    hc = np.concatenate([h.double().numpy(), c.double().numpy()], 1)     # (B, 8)
    keys = cells @ w["key.weight"].T + w["key.bias"]                     # (B, 9, 64)
    query = hc @ w["query.weight"].T + w["query.bias"]                   # (B, 64)
    scores = np.einsum("bkd,bd->bk", keys, query) / 8.0
    a = np.exp(scores - scores.max(1, keepdims=True))
    a /= a.sum(1, keepdims=True)
    pos = np.array([(2 * 32 * j / 95 - 1, 2 * 32 * i / 95 - 1) for i in range(3)
                    for j in range(3)])
    scale = 1 / (1 + np.exp(-(hc @ w["scale.weight"].T + w["scale.bias"])))
    np.testing.assert_allclose(out, np.concatenate([a @ pos, scale], 1), atol=1e-5)


def test_glimpse_loss_reaches_keys_query_and_the_map() -> None:
    """L_G's attraction moves the keys, the query and the backbone's map."""
    torch.manual_seed(2)
    loc = MapLocator(feature_dim=6, hidden_dim=5, context_dim=3)
    z = torch.randn(1, 6, 3, 3, requires_grad=True)
    g = loc(torch.randn(1, 5), torch.randn(1, 3), loc.frame(z, (96, 96)))   # (1, 4)
    joints = torch.tensor([[[[[0.6, 0.6]]]]])                               # (1, 1, 1, 1, 2)
    glimpse_loss(g.view(1, 1, 1, 4), joints, torch.ones(1, 1, 1, 1, dtype=torch.bool)).backward()
    for name, grad in (("key", loc.key.weight.grad), ("query", loc.query.weight.grad),
                       ("map", z.grad)):
        assert grad is not None and float(grad.abs().sum()) > 0, name


def test_a_map_model_streams_as_its_clip() -> None:
    """Backbone and head stepped frame by frame give the clip forward's glimpses and logits.

    The map locator reads ``Z_t`` itself, so the streamed backbone's maps (partial sums) must
    match the clip's closely enough that the soft arg-max lands in the same place.
    """
    torch.manual_seed(3)
    model = GlimpseClouds(dataclasses.replace(CFG, temporal_padding="causal")).eval()
    x = torch.randn(2, 3, CFG.frames, 96, 96)
    with torch.no_grad():
        clip = model(x)
        backbone_state, state = None, model.head.initial_state(2)
        for t in range(CFG.frames):
            z_t, c_t, backbone_state = model.backbone.step(x[:, :, t], backbone_state)
            state, out = model.head.step(state, z_t, c_t)
            torch.testing.assert_close(out.glimpses, clip.glimpses[:, t], atol=1e-6, rtol=0)
    torch.testing.assert_close(out.logits, clip.step_logits[:, -1], atol=1e-5, rtol=0)
    spread = clip.glimpses[..., :2].std(dim=(0, 1)).max()  # the centres move with the input
    assert float(spread) > 1e-3


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_exported_map_head_matches_eager(backend: str, tmp_path) -> None:
    """The exported head step of a map-locator head agrees with the eager head (1e-5)."""
    pytest.importorskip(backend)
    torch.manual_seed(4)
    head = GlimpseCloudsHead(CFG).eval()
    engine = HeadStepEngine(export_head(head, tmp_path / "head.onnx"), backend, threads=1)
    state = head.initial_state(1)
    gen = torch.Generator().manual_seed(5)
    for _ in range(5):
        z = torch.randn(1, CFG.feature_dim, 3, 3, generator=gen).relu() * 3.0
        c = torch.randn(1, CFG.context_dim, generator=gen).relu()
        with torch.no_grad():
            state, out = head.step(state, z, c)
        got = engine.step(z.numpy(), c.numpy())
        np.testing.assert_allclose(got.glimpses, out.glimpses.numpy(), atol=1e-5)
        np.testing.assert_allclose(got.logits, out.logits.numpy(), atol=1e-5)
        np.testing.assert_allclose(engine.state["h"], state.h.numpy(), atol=1e-5)
    assert set(hg.STATE_FIELDS) <= set(engine.state)


def test_locator_choice_is_validated() -> None:
    """An unknown locator fails at configuration time, naming the key."""
    with pytest.raises(ValueError, match="glimpse_locator"):
        ModelConfig.small(glimpse_locator="grid")
