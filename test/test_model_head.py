"""Recurrent head: clip forward vs an independent recurrence, step API, GRU biases, devices.

Also: independent workers, batch independence, traceable step.
"""

import dataclasses
import math

import pytest
import torch
from torch import nn

from glimpse_ros.config import ModelConfig
from glimpse_ros.model.glimpse import crop
from glimpse_ros.model.glimpse_clouds import GlimpseClouds
from glimpse_ros.model.glimpse_rnn import GlimpseRNN
from glimpse_ros.model.head import GlimpseCloudsHead, HeadState
from glimpse_ros.model.quantize import prepare_head
from glimpse_ros.model.workers import Workers

# 96 px input: a 3x3 layer4 map. K = 3 frames in memory, so 6-frame clips drop frames.
CFG = ModelConfig.small(num_classes=7, crop_size=96, memory_slots=3)


def _clip(batch: int, frames: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    Z = torch.randn(batch, CFG.feature_dim, frames, 3, 3, generator=gen)  # noqa: N806
    c = torch.randn(batch, frames, CFG.context_dim, generator=gen)
    return Z, c


@pytest.fixture(scope="module")
def head() -> GlimpseCloudsHead:
    """A small head in eval mode."""
    torch.manual_seed(0)
    return GlimpseCloudsHead(CFG).eval()


def test_workers_are_independent_and_use_their_own_state() -> None:
    """Perturbing worker 1 leaves worker 0 alone; each worker reads its own previous state."""
    torch.manual_seed(0)
    workers = Workers(input_dim=6, hidden_dim=4, num_workers=3, num_classes=5)
    v, p = torch.randn(2, 3, 6), torch.softmax(torch.randn(2, 3, 3), -1)
    r = torch.randn(2, 3, 4)  # a different previous state per worker
    r1, q1 = workers(v, p, r)
    for c in range(3):  # worker c = its own GRU on (Σ_g p_cg v_g, r_c)
        own = workers.cells[c](torch.einsum("bg,bgd->bd", p[:, c], v), r[:, c])
        torch.testing.assert_close(r1[:, c], own)
        torch.testing.assert_close(q1[:, c], workers.classifiers[c](own))
    with torch.no_grad():
        for module in (workers.cells[1], workers.classifiers[1]):
            for param in module.parameters():
                param.add_(torch.randn_like(param))
    r2, q2 = workers(v, p, r)
    torch.testing.assert_close(r2[:, 0], r1[:, 0])
    torch.testing.assert_close(q2[:, 0], q1[:, 0])
    torch.testing.assert_close(r2[:, 2], r1[:, 2])
    assert not torch.allclose(r2[:, 1], r1[:, 1])
    assert all(p1 is not p2 for p1, p2 in zip(workers.cells[0].parameters(),
                                              workers.cells[1].parameters()))


def _reference_locate(head: GlimpseCloudsHead, h: torch.Tensor, c_t: torch.Tensor,
                      z_map: torch.Tensor) -> torch.Tensor:
    """One glimpse ``(1, 4)`` from eq. 3 (``context``) or the map locator (``map``).

    The map locator's soft arg-max is written cell by cell, cell ``(i, j)`` at input pixel
    ``(32 i, 32 j)``.
    """
    loc, hc = head.locator, torch.cat([h, c_t], 1)
    if head.cfg.glimpse_locator == "context":
        raw = loc.linear(hc)  # eq. 3
        return torch.cat([torch.tanh(raw[:, :2]), torch.sigmoid(raw[:, 2:])], 1)
    query, span = loc.query(hc)[0], head.cfg.crop_size - 1
    scores, centres = [], []
    for i in range(z_map.shape[1]):
        for j in range(z_map.shape[2]):
            scores.append(loc.key(z_map[:, i, j]) @ query / math.sqrt(loc.key_dim))
            centres.append([64.0 * j / span - 1, 64.0 * i / span - 1])
    weights = torch.softmax(torch.stack(scores), 0)  # (h w,)
    centre = weights @ torch.tensor(centres, dtype=weights.dtype)  # (2,)
    return torch.cat([centre.unsqueeze(0), torch.sigmoid(loc.scale(hc))], 1)


def _reference_head(head: GlimpseCloudsHead, Z: torch.Tensor,  # noqa: N803
                    c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The recurrence of paper eq. 1-12 written independently, one sample at a time.

    Independent of ``head.step``: ``Ω`` is a stock ``nn.GRUCell`` on ``[z, r_t]``, glimpses are
    pooled with ``crop`` (grid_sample) instead of the separable pooling, the memory is a list of
    frames holding raw ``v`` (distances computed as ``‖(v - m) L‖``), and eq. 10 is written with
    loops over slots. Returns step logits ``(B, T, N)``, glimpses ``(B, T, G, 4)`` and
    assignments ``(B, T, C, G)``.
    """
    cfg, frames = head.cfg, Z.shape[2]
    omega = nn.GRUCell(cfg.feature_dim + cfg.worker_hidden, cfg.glimpse_hidden).double()
    omega.load_state_dict(head.glimpse_rnn.state_dict())
    factor = head.memory.metric.factor
    logits, glimpses, assignments = [], [], []
    for b in range(Z.shape[0]):
        h = torch.zeros(1, cfg.glimpse_hidden, dtype=Z.dtype)
        z = torch.zeros(1, cfg.feature_dim, dtype=Z.dtype)
        r = torch.zeros(cfg.num_workers, cfg.worker_hidden, dtype=Z.dtype)
        memory: list = []  # (t, v (G, D), p (C, G)) per frame
        for t in range(frames):
            r_t = r.sum(0, keepdim=True)  # eq. 7
            locs, feats = [], []
            for _ in range(cfg.num_glimpses):
                h = omega(torch.cat([z, r_t], 1), h)  # eq. 2
                loc = _reference_locate(head, h, c[b:b + 1, t], Z[b, :, t])
                z = crop(Z[b:b + 1, :, t], loc, (cfg.crop_size, cfg.crop_size)).mean((2, 3))
                locs.append(loc)
                feats.append(z)
            v = torch.cat(feats) * head.what_where.embed(torch.cat(locs))  # (G, D), eq. 5
            if not memory:
                p = torch.softmax(head.memory.initial_logits, -1)  # (C, G)
            else:
                slots = [(tk, m, pk[:, g]) for tk, vk, pk in memory[-cfg.memory_slots:]
                         for g, m in enumerate(vk)]  # the G glimpses of the last K frames
                phi = torch.stack([torch.stack([((vg - m) @ factor).norm() for vg in v])
                                   for _, m, _ in slots])  # (KG, G), eq. 9
                lo, hi = phi.min(), phi.max()
                phi_hat = (phi - lo) / torch.maximum(hi - lo, 0.01 * hi)
                score = sum(math.exp(-cfg.memory_decay * (t - tk)) * w.unsqueeze(1)
                            * (1 - phi_hat[k]) for k, (tk, _, w) in enumerate(slots))  # (C, G)
                p = torch.softmax(score / cfg.assign_temperature, -1)  # eq. 10
            memory.append((t, v, p))
            r = torch.cat([cell(p[w:w + 1] @ v, r[w:w + 1])  # eq. 6, 8
                           for w, cell in enumerate(head.workers.cells)])
            q = sum(cls(r[w]) for w, cls in enumerate(head.workers.classifiers))  # eq. 11-12
            logits.append(q)
            glimpses.append(torch.cat(locs))
            assignments.append(p)
    shape = (Z.shape[0], frames)
    return (torch.stack(logits).view(*shape, -1), torch.stack(glimpses).view(*shape, -1, 4),
            torch.stack(assignments).view(*shape, cfg.num_workers, -1))


@pytest.mark.parametrize("locator", ["map", "context"])
def test_clip_forward_equals_an_independent_recurrence(locator: str) -> None:
    """Clip outputs equal eq. 1-12 written independently, over more frames than K."""
    torch.manual_seed(0)
    ref_head = GlimpseCloudsHead(dataclasses.replace(CFG, glimpse_locator=locator)).double()
    with torch.no_grad():  # a non-trivial metric, so that a transposed L would show
        noise = torch.randn(CFG.feature_dim, CFG.feature_dim, dtype=torch.float64,
                            generator=torch.Generator().manual_seed(5))
        ref_head.memory.metric.factor.add_(0.3 * noise)
    Z, c = _clip(batch=2, frames=6)  # noqa: N806
    Z, c = Z.double().relu(), c.double()  # noqa: N806 (post-ReLU features, like layer4's)
    with torch.no_grad():
        clip = ref_head(Z, c)
        logits, glimpses, assignment = _reference_head(ref_head, Z, c)
    torch.testing.assert_close(clip.glimpses, glimpses, atol=1e-9, rtol=0)
    torch.testing.assert_close(clip.assignment, assignment, atol=1e-9, rtol=0)
    torch.testing.assert_close(clip.step_logits, logits, atol=1e-9, rtol=0)
    torch.testing.assert_close(clip.logits, logits.mean(1), atol=1e-9, rtol=0)


def test_stepping_reproduces_the_clip_forward(head: GlimpseCloudsHead) -> None:
    """Stepping T frames from a fresh state gives the clip outputs (also across a detach/to)."""
    Z, c = _clip(batch=2, frames=6)  # noqa: N806
    with torch.no_grad():
        clip = head(Z, c)
        state = head.initial_state(2)
        steps = []
        for t in range(6):
            state, out = head.step(state, Z[:, :, t], c[:, t])
            steps.append(out)
            if t == 2:  # a streaming consumer cuts the graph and may move the state
                state = state.detach().to("cpu")
    assert clip.logits.shape == (2, CFG.num_classes) and clip.glimpses.shape == (2, 6, 3, 4)
    step_logits = torch.stack([o.logits for o in steps], 1)
    torch.testing.assert_close(step_logits, clip.step_logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(step_logits.mean(1), clip.logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.stack([o.glimpses for o in steps], 1), clip.glimpses,
                               atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.stack([o.assignment for o in steps], 1), clip.assignment,
                               atol=1e-5, rtol=0)
    slots = CFG.memory_slots * CFG.num_glimpses  # K frames x G glimpses
    assert state.step.tolist() == [6, 6] and state.memory_fill.tolist() == [slots] * 2
    # The what&where vectors are exposed, e.g. to initialise the memory metric from them.
    assert clip.vectors.shape == (2, 6, CFG.num_glimpses, CFG.feature_dim)
    newest = clip.vectors[:, -CFG.memory_slots:].reshape(2, slots, CFG.feature_dim)  # (B, KG, D)
    torch.testing.assert_close(state.memory_values, newest)  # the metric starts as the identity


def test_state_carries_information_across_frames(head: GlimpseCloudsHead) -> None:
    """The glimpse GRU is not reset per frame: a different past changes the next frame."""
    Z, c = _clip(batch=1, frames=2)  # noqa: N806
    Z2, _ = _clip(batch=1, frames=2, seed=1)  # noqa: N806
    with torch.no_grad():
        a = head(Z, c)
        b = head(torch.cat([Z2[:, :, :1], Z[:, :, 1:]], dim=2), c)
    assert not torch.allclose(a.glimpses[:, 1], b.glimpses[:, 1])


def test_outputs_do_not_depend_on_batch_mates(head: GlimpseCloudsHead) -> None:
    """Each sample's outputs are the same alone or in a batch."""
    Z, c = _clip(batch=3)  # noqa: N806
    with torch.no_grad():
        batch = head(Z, c)
        for i in range(3):
            alone = head(Z[i:i + 1], c[i:i + 1])
            torch.testing.assert_close(alone.logits, batch.logits[i:i + 1], atol=1e-5, rtol=0)
            torch.testing.assert_close(alone.glimpses, batch.glimpses[i:i + 1], atol=1e-5, rtol=0)


def test_initial_state_shapes_and_bad_inputs(head: GlimpseCloudsHead) -> None:
    """The fresh state has the documented shapes; wrong shapes raise ValueError."""
    s = head.initial_state(2)
    assert isinstance(s, HeadState) and s.batch_size == 2
    assert s.h.shape == (2, CFG.glimpse_hidden) and s.z_prev.shape == (2, CFG.feature_dim)
    assert s.r.shape == (2, CFG.num_workers, CFG.worker_hidden)
    slots = CFG.memory_slots * CFG.num_glimpses  # K frames x G glimpses
    assert s.memory_values.shape == (2, slots, CFG.feature_dim)
    assert s.memory_weights.shape == (2, CFG.num_workers, slots)
    assert s.memory_times.shape == (2, slots) and s.step.tolist() == [0, 0]
    Z, c = _clip(batch=2)  # noqa: N806
    with pytest.raises(ValueError, match="z_t must be"):
        head.step(s, Z[:, :-1, 0], c[:, 0])
    with pytest.raises(ValueError, match="batch mismatch"):
        head.step(head.initial_state(1), Z[:, :, 0], c[:, 0])
    with pytest.raises(ValueError, match="expected Z"):
        head(Z, c[:, :-1])


def test_forward_features_matches_forward() -> None:
    """The composed model's feature entry point equals the full forward."""
    torch.manual_seed(0)
    model = GlimpseClouds(CFG).eval()
    x = torch.randn(1, 3, 3, 64, 64)
    with torch.no_grad():
        full = model(x)
        Z, c = model.backbone(x)  # noqa: N806
        part = model.forward_features(Z, c, input_size=(64, 64))
        glob = model(x, global_only=True)
    torch.testing.assert_close(part.logits, full.logits)
    torch.testing.assert_close(part.glimpses, full.glimpses)
    assert full.pose.shape == (1, 3, 2, CFG.num_joints, 2)
    assert glob.glimpses is None and full.global_logits is None
    torch.testing.assert_close(glob.logits, Z.mean((2, 3, 4)) @ model.global_fc.weight.T
                               + model.global_fc.bias)


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::torch.jit.TracerWarning")
def test_step_traces_without_data_dependent_branches(head: GlimpseCloudsHead) -> None:
    """A step traced on the empty state reproduces eager steps with a partly or full memory."""
    names = [f.name for f in dataclasses.fields(HeadState)]

    class Step(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.head = head

        def forward(self, z, c, *state):
            new, out = self.head.step(HeadState(*state), z, c)
            return (out.logits, out.glimpses) + tuple(getattr(new, n) for n in names)

    Z, c = _clip(batch=1, frames=5)  # noqa: N806
    state = head.initial_state(1)
    flat = tuple(getattr(state, n) for n in names)
    with torch.no_grad():
        traced = torch.jit.trace(Step(), (Z[:, :, 0], c[:, 0]) + flat)
        for t in range(5):
            state, out = head.step(state, Z[:, :, t], c[:, t])
            result = traced(Z[:, :, t], c[:, t], *flat)
            flat = result[2:]
            torch.testing.assert_close(result[0], out.logits, atol=1e-6, rtol=0)
            torch.testing.assert_close(result[1], out.glimpses, atol=1e-6, rtol=0)


def test_gradient_reaches_the_location_head_through_the_crop() -> None:
    """With Λ(l) made independent of l, W_l still gets a gradient: it flows through the crop."""
    torch.manual_seed(0)
    head = GlimpseCloudsHead(CFG)
    with torch.no_grad():
        head.what_where.embed[0].weight.zero_()  # Λ(l) is now a constant
    Z, c = _clip(batch=1, frames=1)  # noqa: N806
    head(Z, c).logits.sum().backward()
    for weight in (head.locator.query.weight, head.locator.scale.weight):  # map locator
        assert float(weight.grad.abs().sum()) > 0


def test_glimpse_gru_equals_nn_grucell_on_the_same_weights() -> None:
    """Ω with its per-frame r_t split (and the fp32 inference copy) is nn.GRUCell on [z, r_t]."""
    torch.manual_seed(0)
    rnn = GlimpseRNN(feature_dim=5, worker_dim=3, hidden_dim=4)
    stock = nn.GRUCell(8, 4)
    stock.load_state_dict(rnn.state_dict())
    z, r, h = torch.randn(2, 5), torch.randn(2, 3), torch.randn(2, 4)
    expected = stock(torch.cat([z, r], 1), h)
    torch.testing.assert_close(rnn.cell(z, h, rnn.frame_gates(r)), expected)
    head = GlimpseCloudsHead(CFG)
    head.glimpse_rnn = rnn
    fast = prepare_head(head, "fp32").glimpse_rnn
    torch.testing.assert_close(fast.cell(z, h, fast.frame_gates(r)), expected)


def test_every_fused_gru_call_gets_1d_biases(head: GlimpseCloudsHead, monkeypatch) -> None:
    """No torch.gru_cell call receives a per-sample bias (the CUDA fused kernel refuses it)."""
    calls = []

    def recorder(original):
        def gru_cell(x, hx, w_ih, w_hh, b_ih=None, b_hh=None):
            calls.append((w_ih.shape[0], b_ih, b_hh))
            return original(x, hx, w_ih, w_hh, b_ih, b_hh)
        return gru_cell

    monkeypatch.setattr(torch, "gru_cell", recorder(torch.gru_cell))
    monkeypatch.setattr(torch._VF, "gru_cell", recorder(torch._VF.gru_cell))  # nn.GRUCell's
    Z, c = _clip(batch=2, frames=2)  # noqa: N806
    with torch.no_grad():
        head(Z, c)
        prepare_head(head, "fp32")(Z, c)
    assert len(calls) >= 2 * 2 * CFG.num_workers  # at least the workers' cells
    for gates, b_ih, b_hh in calls:
        for bias in (b_ih, b_hh):
            assert bias is None or tuple(bias.shape) == (gates,)


def test_full_model_trains_and_inits_its_metric_on_the_meta_device() -> None:
    """Forward, backward and init_metric create no tensor off the model's device (meta raises)."""
    with torch.device("meta"):
        model = GlimpseClouds(CFG)
    out = model(torch.empty(2, 3, 4, 96, 96, device="meta"))
    (out.logits.sum() + out.pose.sum() + out.glimpses.sum()).backward()
    assert model.head.locator.query.weight.grad.device.type == "meta"
    vectors = model.head(*model.backbone(torch.empty(1, 3, 2, 96, 96, device="meta"))).vectors
    model.head.memory.init_metric(vectors.flatten(0, 2))
    assert model.head.memory.metric.factor.device.type == "meta"
