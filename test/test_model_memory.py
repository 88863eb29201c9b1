"""External memory: FIFO writes, recency, soft assignment, learned PSD metric."""

import math

import pytest
import torch

from glimpse_ros.model.memory import ExternalMemory, MemoryMetric

DIM, WORKERS, GLIMPSES, SLOTS = 6, 3, 2, 5


def _memory(**kw) -> ExternalMemory:
    args = dict(feature_dim=DIM, num_workers=WORKERS, num_glimpses=GLIMPSES, slots=SLOTS,
                decay=0.25, temperature=0.5)
    args.update(kw)
    return ExternalMemory(**args)


def _empty(batch: int, slots: int = SLOTS, workers: int = WORKERS):
    return (torch.zeros(batch, slots, DIM), torch.zeros(batch, workers, slots),
            torch.zeros(batch, slots, dtype=torch.long), torch.zeros(batch, dtype=torch.long))


def _fill(mem: ExternalMemory, frames: int, batch: int = 1, seed: int = 0):
    """Write ``frames`` frames of random glimpses; return the state and everything written."""
    gen = torch.Generator().manual_seed(seed)
    values, weights, times, fill = _empty(batch, mem.slots)
    written_v, written_p = [], []
    for t in range(frames):
        step = torch.full((batch,), t, dtype=torch.long)
        v = torch.randn(batch, GLIMPSES, DIM, generator=gen)
        query = mem.metric.project(v)  # (B, G, D): equals v while the metric is the identity
        p = mem.assign(values, weights, times, fill, step, query)
        values, weights, times, fill = mem.write(values, weights, times, fill, step, query, p)
        written_v.append(v)
        written_p.append(p)
    all_v = torch.cat(written_v, 1) if written_v else None
    all_p = torch.cat(written_p, 2) if written_p else None
    return (values, weights, times, fill), all_v, all_p


def test_oldest_slots_are_dropped_at_capacity() -> None:
    """Oldest slots are dropped at capacity."""
    mem = _memory()
    (values, weights, times, fill), all_v, all_p = _fill(mem, frames=2)
    assert fill.tolist() == [4]  # not full yet: 2 frames x 2 glimpses
    torch.testing.assert_close(values[:, 1:], all_v)
    (values, weights, times, fill), all_v, all_p = _fill(mem, frames=4)
    assert fill.tolist() == [SLOTS]
    torch.testing.assert_close(values, all_v[:, -SLOTS:])  # 8 written, the 3 oldest dropped
    torch.testing.assert_close(weights, all_p[:, :, -SLOTS:])
    assert times.tolist() == [[1, 2, 2, 3, 3]]
    assert mem.valid_mask(torch.tensor([0, 2, SLOTS])).tolist() == [
        [False] * 5, [False, False, False, True, True], [True] * 5]


def test_recency_decays_with_elapsed_time() -> None:
    """Recency decays with elapsed time."""
    mem = _memory(decay=0.25)
    weight = mem.recency(torch.tensor([[0, 1, 2, 3, 4]]), torch.tensor([5]),
                         torch.tensor([4]))
    expected = [0.0] + [math.exp(-0.25 * e) for e in (4, 3, 2, 1)]  # slot 0 is empty
    torch.testing.assert_close(weight, torch.tensor([expected]))


def test_with_equal_similarities_more_recent_slots_weigh_more() -> None:
    """With equal similarities more recent slots weigh more."""
    mem = _memory(num_glimpses=2, slots=2)
    a, b = torch.randn(DIM), torch.randn(DIM)
    values = torch.stack([a, b]).unsqueeze(0)  # slot 0 written at t=0 holds a, slot 1 (t=1) b
    weights = torch.full((1, WORKERS, 2), 0.5)  # the same weight for every slot and worker
    times = torch.tensor([[0, 1]])
    v = torch.stack([a, b]).unsqueeze(0)  # glimpse 0 equals the old slot, glimpse 1 the new one
    p = mem.assign(values, weights, times, torch.tensor([2]), torch.tensor([2]), v)
    assert bool((p[0, :, 1] > p[0, :, 0]).all())
    # Exact value: scores 0.5 e^{-0.5} and 0.5 e^{-0.25}, softmax with temperature 0.5.
    s0, s1 = 0.5 * math.exp(-0.5) / 0.5, 0.5 * math.exp(-0.25) / 0.5
    expected = math.exp(s1) / (math.exp(s0) + math.exp(s1))
    torch.testing.assert_close(p[0, :, 1], torch.full((WORKERS,), expected), atol=1e-5, rtol=0)


@pytest.mark.parametrize("frames", [0, 1, 2, 5])
def test_assignment_is_a_distribution_for_every_worker(frames: int) -> None:
    """Assignment is a distribution for every worker."""
    mem = _memory()
    (values, weights, times, fill), _, _ = _fill(mem, frames, batch=3, seed=frames)
    v = torch.randn(3, GLIMPSES, DIM, requires_grad=True)
    p = mem.assign(values, weights, times, fill, torch.full((3,), frames), mem.metric.project(v))
    assert p.shape == (3, WORKERS, GLIMPSES)
    torch.testing.assert_close(p.sum(dim=-1), torch.ones(3, WORKERS))
    assert bool((p >= 0).all())
    p[..., 0].sum().backward()
    assert bool(torch.isfinite(v.grad).all())
    assert bool(torch.isfinite(mem.metric.factor.grad).all())
    if frames == 0:  # empty memory: the learned initial distribution
        torch.testing.assert_close(p, torch.softmax(mem.initial_logits, -1).expand(3, -1, -1))
    else:
        assert float(mem.metric.factor.grad.abs().sum()) > 0


def test_initial_distribution_differs_between_workers() -> None:
    """Initial distribution differs between workers."""
    p0 = torch.softmax(_memory().initial_logits, dim=-1)
    assert not torch.allclose(p0[0], p0[1])


def test_assignment_does_not_depend_on_batch_mates() -> None:
    """Assignment does not depend on batch mates."""
    mem = _memory()
    (values, weights, times, fill), _, _ = _fill(mem, 3, batch=2)
    v = torch.randn(2, GLIMPSES, DIM)
    step = torch.full((2,), 3)
    both = mem.assign(values, weights, times, fill, step, v)
    alone = mem.assign(values[:1], weights[:1], times[:1], fill[:1], step[:1], v[:1] * 1.0)
    torch.testing.assert_close(both[:1], alone)
    scaled = mem.assign(values * torch.tensor([1.0, 50.0]).view(2, 1, 1), weights, times, fill,
                        step, v * torch.tensor([1.0, 50.0]).view(2, 1, 1))
    torch.testing.assert_close(scaled[0], both[0])


def test_metric_stays_psd_after_optimiser_steps() -> None:
    """Metric stays psd after optimiser steps."""
    torch.manual_seed(0)
    metric = MemoryMetric(DIM)
    opt = torch.optim.Adam(metric.parameters(), lr=0.5)
    target = torch.randn(DIM, DIM)
    target = target + target.t()  # indefinite: the optimiser is pulled towards it
    for _ in range(20):
        opt.zero_grad()
        ((metric.matrix() - target) ** 2).sum().backward()
        opt.step()
    eig = torch.linalg.eigvalsh(metric.matrix().detach().double())
    assert float(eig.min()) >= -1e-6 * float(eig.abs().max())
    assert not torch.allclose(metric.matrix(), torch.eye(DIM))  # it did move


def test_init_metric_is_the_shrunk_inverse_covariance() -> None:
    """Init metric is the shrunk inverse covariance."""
    torch.manual_seed(0)
    feats = torch.randn(200, DIM) @ torch.randn(DIM, DIM) + 3.0
    metric = MemoryMetric(DIM)
    torch.testing.assert_close(metric.matrix(), torch.eye(DIM))
    metric.init_metric(feats, shrinkage=0.2)
    x = feats.double() - feats.double().mean(0)
    cov = x.t() @ x / (len(feats) - 1)
    shrunk = 0.8 * cov + 0.2 * cov.diagonal().mean() * torch.eye(DIM, dtype=torch.float64)
    torch.testing.assert_close((metric.matrix().double() @ shrunk), torch.eye(DIM,
                               dtype=torch.float64), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="shrinkage"):
        metric.init_metric(feats, shrinkage=1.5)
    with pytest.raises(ValueError, match="features must be"):
        metric.init_metric(feats[:, :3])
    with pytest.raises(ValueError, match="singular"):
        metric.init_metric(feats[:3], shrinkage=0.0)
