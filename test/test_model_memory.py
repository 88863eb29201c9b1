"""External memory: whole-frame FIFO, recency, eq. 10 by hand, conditioning, learned metric."""

import math

import pytest
import torch

from glimpse_ros.model.memory import ExternalMemory, MemoryMetric

DIM, WORKERS, GLIMPSES, FRAMES = 6, 3, 2, 3
SLOTS = FRAMES * GLIMPSES  # the G glimpses of each of the last K frames


def _memory(**kw) -> ExternalMemory:
    args = dict(feature_dim=DIM, num_workers=WORKERS, num_glimpses=GLIMPSES, frames=FRAMES,
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


def test_the_oldest_frame_is_dropped_whole_at_capacity() -> None:
    """K frames of G glimpses are kept; a new frame drops the oldest frame's G slots."""
    mem = _memory()
    assert mem.slots == 6
    (values, weights, times, fill), all_v, all_p = _fill(mem, frames=2)
    assert fill.tolist() == [4]  # not full yet: 2 frames x 2 glimpses
    torch.testing.assert_close(values[:, 2:], all_v)
    (values, weights, times, fill), all_v, all_p = _fill(mem, frames=5)
    assert fill.tolist() == [SLOTS]
    torch.testing.assert_close(values, all_v[:, -SLOTS:])  # frames 2, 3, 4; 0 and 1 dropped
    torch.testing.assert_close(weights, all_p[:, :, -SLOTS:])
    assert times.tolist() == [[2, 2, 3, 3, 4, 4]]
    assert mem.valid_mask(torch.tensor([0, 2, SLOTS])).tolist() == [
        [False] * 6, [False] * 4 + [True] * 2, [True] * 6]
    with pytest.raises(ValueError, match="expected 2 glimpses"):
        mem.write(values, weights, times, fill, torch.tensor([5]), values[:, :1], all_p[:, :, :1])


def test_recency_decays_with_elapsed_time() -> None:
    """Recency decays with elapsed time."""
    mem = _memory(decay=0.25)
    weight = mem.recency(torch.tensor([[0, 0, 1, 1, 2, 2]]), torch.tensor([3]),
                         torch.tensor([4]))
    expected = [0.0, 0.0] + [math.exp(-0.25 * e) for e in (2, 2, 1, 1)]  # slots 0-1 are empty
    torch.testing.assert_close(weight, torch.tensor([expected]))


def test_with_equal_similarities_more_recent_slots_weigh_more() -> None:
    """With equal similarities more recent slots weigh more."""
    mem = _memory(num_glimpses=2, frames=1)
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


def _phi(x: list[float], y: list[float], factor: list[list[float]]) -> float:
    """Eq. 9 written out: sqrt((x - y)ᵀ D (x - y)) with D = L Lᵀ."""
    n = len(x)
    d = [xi - yi for xi, yi in zip(x, y)]
    dmat = [[sum(factor[i][k] * factor[j][k] for k in range(n)) for j in range(n)]
            for i in range(n)]
    return math.sqrt(sum(d[i] * dmat[i][j] * d[j] for i in range(n) for j in range(n)))


def _eq10(slots: list, query: list, step: int, factor: list, workers: int,
          decay: float = 0.25, temperature: float = 0.5) -> list[list[float]]:
    """Eq. 10 by hand; ``slots`` = occupied ``(t_k, m_k, [w_{c,k} per worker])``, oldest first."""
    phi = [[_phi(v, m, factor) for v in query] for _, m, _ in slots]  # [k][g]
    lo, hi = min(min(row) for row in phi), max(max(row) for row in phi)
    span = hi - lo  # the floor (1% of hi) is not reached in these cases
    assert span > 0.01 * hi
    p = []
    for c in range(workers):
        scores = [sum(math.exp(-decay * (step - t)) * w[c] * (1.0 - (phi[k][g] - lo) / span)
                      for k, (t, _, w) in enumerate(slots)) / temperature
                  for g in range(len(query))]
        e = [math.exp(sc) for sc in scores]
        p.append([x / sum(e) for x in e])
    return p


def test_assignment_is_eq10_by_hand_through_writes() -> None:
    """Written frames, whole-frame dropping, recency and the metric L (not Lᵀ) as in eq. 9-10."""
    factor = [[1.0, 0.0], [0.5, 2.0]]  # not symmetric: a transposed projection would differ
    mem = ExternalMemory(feature_dim=2, num_workers=2, num_glimpses=2, frames=2, decay=0.25,
                         temperature=0.5)
    with torch.no_grad():
        mem.metric.factor.copy_(torch.tensor(factor))
    frames = [  # (glimpse vectors of the frame, weights p[c][g] written with them)
        ([[1.0, 0.0], [0.0, 1.0]], [[0.9, 0.1], [0.3, 0.7]]),
        ([[0.5, 0.5], [-1.0, 0.2]], [[0.2, 0.8], [0.6, 0.4]]),
        ([[0.3, -0.6], [1.5, 1.0]], [[0.5, 0.5], [0.1, 0.9]]),
    ]
    query = [[0.2, 0.4], [-0.3, 1.1]]
    values, weights = torch.zeros(1, 4, 2), torch.zeros(1, 2, 4)
    times, fill = torch.zeros(1, 4, dtype=torch.long), torch.zeros(1, dtype=torch.long)
    for t, (vectors, p) in enumerate(frames):
        step = torch.tensor([t])
        got = mem.assign(values, weights, times, fill, step, mem.metric.project(
            torch.tensor([query])))
        kept = [(u, m, [p_u[c][g] for c in range(2)])
                for u, (vs, p_u) in enumerate(frames[:t]) if u >= t - 2 for g, m in enumerate(vs)]
        if kept:  # frame 0 alone, then frames 0-1, then 1-2 (frame 0 dropped whole)
            expected = torch.tensor(_eq10(kept, query, t, factor, workers=2))
            torch.testing.assert_close(got[0], expected, atol=1e-6, rtol=0)
        else:
            torch.testing.assert_close(got[0], torch.softmax(mem.initial_logits, -1))
        values, weights, times, fill = mem.write(values, weights, times, fill, step,
                                                 mem.metric.project(torch.tensor([vectors])),
                                                 torch.tensor([p]))
    kept = [(u, m, [frames[u][1][c][g] for c in range(2)])
            for u in (1, 2) for g, m in enumerate(frames[u][0])]
    got = mem.assign(values, weights, times, fill, torch.tensor([3]),
                     mem.metric.project(torch.tensor([query])))
    torch.testing.assert_close(got[0], torch.tensor(_eq10(kept, query, 3, factor, 2)),
                               atol=1e-6, rtol=0)


@pytest.mark.parametrize("jitter", [0.0, 1e-7])
def test_assignment_gradient_is_bounded_when_distances_are_equal(jitter: float) -> None:
    """Equal (or nearly equal) distances: |dp/dv| stays bounded (it was ~1e12 without a floor).

    Bound: |dp/ds| <= 1 / (4α) per entry, each score sums KG terms of weight <= 1, and with the
    range floored at 1% of the largest distance |dφ̂/dφ| <= 2 / (0.01 max φ) with |dφ/dv| <= 1
    (L = I): 1/(4 · 0.5) · 2 · 200 = 200 at max φ = 1.
    """
    mem = _memory(frames=1)  # 2 slots
    keys = torch.eye(DIM)[:2].unsqueeze(0)  # (1, 2, D) unit vectors: distance 1 from the origin
    weights = torch.tensor([[[0.9, 0.2], [0.1, 0.6], [0.5, 0.5]]])  # (1, C, 2)
    times, fill, step = torch.zeros(1, 2, dtype=torch.long), torch.tensor([2]), torch.tensor([1])
    v = torch.zeros(1, GLIMPSES, DIM) + jitter * torch.randn(1, GLIMPSES, DIM,
                                                             generator=torch.Generator()
                                                             .manual_seed(0))

    def assign(v: torch.Tensor) -> torch.Tensor:
        return mem.assign(keys, weights, times, fill, step, mem.metric.project(v))

    jac = torch.autograd.functional.jacobian(assign, v)  # (1, C, G, 1, G, D)
    assert bool(torch.isfinite(jac).all())
    assert float(jac.abs().max()) <= 200.0
    # Random inputs (range far above the floor): a moderate gradient, as before.
    gen = torch.Generator().manual_seed(1)
    keys = torch.randn(1, 2, DIM, generator=gen)
    jac = torch.autograd.functional.jacobian(assign, torch.randn(1, GLIMPSES, DIM, generator=gen))
    assert 0.0 < float(jac.abs().max()) < 10.0


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


def test_init_metric_runs_on_the_features_device() -> None:
    """init_metric mixes no CPU tensor into the features' device (meta raises on mixing)."""
    with torch.device("meta"):
        metric = MemoryMetric(DIM)
    metric.init_metric(torch.empty(20, DIM, device="meta"))
    assert metric.factor.device.type == "meta"


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
