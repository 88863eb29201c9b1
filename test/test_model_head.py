"""Recurrent head: independent workers, step API equals clip forward, batch independence."""

import dataclasses

import pytest
import torch

from glimpse_ros.config import ModelConfig
from glimpse_ros.model.glimpse_clouds import GlimpseClouds
from glimpse_ros.model.head import GlimpseCloudsHead, HeadState
from glimpse_ros.model.workers import Workers

CFG = ModelConfig.small(num_classes=7)


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
    assert state.step.tolist() == [6, 6] and state.memory_fill.tolist() == [CFG.memory_slots] * 2
    # The what&where vectors are exposed, e.g. to initialise the memory metric from them.
    assert clip.vectors.shape == (2, 6, CFG.num_glimpses, CFG.feature_dim)
    newest = clip.vectors.reshape(2, -1, CFG.feature_dim)[:, -CFG.memory_slots:]  # (B, K, D)
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
    assert s.memory_values.shape == (2, CFG.memory_slots, CFG.feature_dim)
    assert s.memory_weights.shape == (2, CFG.num_workers, CFG.memory_slots)
    assert s.memory_times.shape == (2, CFG.memory_slots) and s.step.tolist() == [0, 0]
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
        part = model.forward_features(Z, c)
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
    assert float(head.locator.linear.weight.grad.abs().sum()) > 0
