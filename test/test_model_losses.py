"""Pose, glimpse and total losses: masking, body-order invariance, diversity."""

import pytest
import torch

from glimpse_ros.model.glimpse_clouds import ClipOutput
from glimpse_ros.model.losses import LossWeights, glimpse_loss, pose_loss, total_loss

B, T, J = 3, 4, 25


def _pose_batch(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    pred = (torch.rand(B, T, 2, J, 2, generator=gen) * 2 - 1).requires_grad_(True)
    target = torch.rand(B, T, 2, J, 2, generator=gen) * 2 - 1
    mask = torch.rand(B, T, 2, J, generator=gen) > 0.2
    return pred, target, mask


def _glimpses(centres: torch.Tensor) -> torch.Tensor:
    """(B, T, G, 2) centres -> (B, T, G, 4) glimpses with scale 0.3."""
    return torch.cat([centres, torch.full_like(centres, 0.3)], dim=-1)


def test_pose_loss_ignores_missing_second_body_and_missing_skeleton() -> None:
    """Masked targets (NaN there) give a finite loss and finite gradients."""
    pred, target, mask = _pose_batch()
    mask[:, :, 1] = False  # no second body anywhere
    target[:, :, 1] = float("nan")
    mask[0] = False  # sample 0 has no skeleton at all
    target[0] = float("nan")
    loss = pose_loss(pred, target, mask)
    loss.backward()
    assert bool(torch.isfinite(loss)) and bool(torch.isfinite(pred.grad).all())
    assert float(pred.grad[0].abs().sum()) == 0.0
    # Samples without a skeleton do not count in the mean.
    alone = pose_loss(pred[1:].detach(), target[1:], mask[1:])
    torch.testing.assert_close(loss.detach(), alone)


def test_pose_loss_all_masked_is_zero_without_nan() -> None:
    """A batch without any visible joint gives 0 and a zero (finite) gradient."""
    pred, target, mask = _pose_batch()
    loss = pose_loss(pred, torch.full_like(target, float("nan")), torch.zeros_like(mask))
    loss.backward()
    assert float(loss.detach()) == 0.0 and bool((pred.grad == 0).all())


def test_pose_loss_is_invariant_to_body_order_and_takes_the_best() -> None:
    """Swapping the target bodies changes nothing; a swapped perfect guess scores 0."""
    pred, target, mask = _pose_batch(1)
    a = pose_loss(pred, target, mask)
    b = pose_loss(pred, target.flip(2), mask.flip(2))
    torch.testing.assert_close(a, b)
    assert float(pose_loss(target.flip(2), target, mask)) == 0.0
    assert float(pose_loss(target, target.flip(2), mask.flip(2))) == 0.0
    # and it is the masked MSE of the better ordering
    diff = (pred - target).detach() ** 2 * mask.unsqueeze(-1)
    diff_swap = (pred - target.flip(2)).detach() ** 2 * mask.flip(2).unsqueeze(-1)
    count = mask.sum(dim=(1, 2, 3)) * 2
    best = torch.minimum(diff.sum(dim=(1, 2, 3, 4)), diff_swap.sum(dim=(1, 2, 3, 4))) / count
    torch.testing.assert_close(a.detach(), best.mean())


def test_diversity_term_falls_as_glimpses_separate() -> None:
    """The diversity term decreases as the glimpse centres move apart."""
    directions = torch.tensor([[1.0, 0.0], [-1.0, 0.5], [0.0, -1.0]])
    values = []
    for spread in (0.0, 0.1, 0.3, 0.8):
        centres = (spread * directions).expand(1, 2, 3, 2)
        values.append(float(glimpse_loss(_glimpses(centres), None, None)))
    assert values[0] == pytest.approx(1.0)  # all on one point: 1 / (1 + 0)
    assert all(a > b for a, b in zip(values, values[1:]))


def test_attraction_term_and_frames_without_joints() -> None:
    """Glimpses on visible joints pay nothing; frames without joints pay only diversity."""
    centres = torch.tensor([[[[0.5, 0.5], [-0.5, 0.2], [0.0, -0.7]]]]).repeat(1, 2, 1, 1)
    joints = torch.zeros(1, 2, 2, J, 2)
    joints[:, :, 0, :3] = centres  # the first three joints of body 0 sit on the glimpses
    joints[:, :, 0, 3:] = 0.9
    mask = torch.ones(1, 2, 2, J, dtype=torch.bool)
    mask[:, :, 1] = False
    diversity = float(glimpse_loss(_glimpses(centres), None, None))
    on_joints = glimpse_loss(_glimpses(centres), joints, mask)
    assert float(on_joints) == pytest.approx(diversity, abs=1e-4)
    mask[:, 1] = False  # frame 1: no visible joint
    shifted = centres + 0.1
    loss = glimpse_loss(_glimpses(shifted), joints, mask)
    # frame 0: diversity + 3 glimpses each 0.1*sqrt(2) from their joint; frame 1: diversity only
    expected = diversity + 3 * 0.1 * 2 ** 0.5 / 2
    assert float(loss) == pytest.approx(expected, abs=1e-4)


def _outputs(requires_grad: bool = True) -> ClipOutput:
    torch.manual_seed(0)
    n = 5

    def rnd(*shape):
        return torch.randn(*shape, requires_grad=requires_grad)
    return ClipOutput(logits=rnd(B, n), step_logits=rnd(B, T, n), worker_logits=rnd(B, T, 3, n),
                      glimpses=torch.tanh(rnd(B, T, 3, 4)), assignment=None,
                      pose=torch.tanh(rnd(B, T, 2, J, 2)), global_logits=rnd(B, n))


def test_total_loss_combines_the_terms() -> None:
    """Weighted sum of the parts; stage 1 uses the global logits and no glimpse term."""
    out = _outputs()
    labels = torch.tensor([0, 3, 4])
    _, target, mask = _pose_batch()
    loss, parts = total_loss(out, labels, target, mask, LossWeights(1.0, 0.1, 2.0))
    expected = parts["classification"] + 0.1 * parts["pose"] + 2.0 * parts["glimpse"]
    torch.testing.assert_close(loss.detach(), expected)
    per_step = torch.nn.functional.cross_entropy(out.step_logits.reshape(B * T, -1),
                                                 labels.repeat_interleave(T))
    torch.testing.assert_close(parts["classification"], per_step.detach())
    loss, parts = total_loss(out, labels, target, mask, global_only=True)
    assert float(parts["glimpse"]) == 0.0
    torch.testing.assert_close(parts["classification"], torch.nn.functional.cross_entropy(
        out.global_logits, labels).detach())
    loss, parts = total_loss(out, labels, None, None)
    assert float(parts["pose"]) == 0.0 and bool(torch.isfinite(loss))


def test_total_loss_errors() -> None:
    """Missing head outputs, a missing mask and negative weights raise ValueError."""
    out = _outputs(requires_grad=False)
    labels = torch.tensor([0, 1, 2])
    _, target, mask = _pose_batch()
    with pytest.raises(ValueError, match="mask is required"):
        total_loss(out, labels, target, None)
    out.step_logits = None
    with pytest.raises(ValueError, match="global_only"):
        total_loss(out, labels, target, mask)
    with pytest.raises(ValueError, match="pose"):
        LossWeights(pose=-1.0)
    with pytest.raises(ValueError, match="mask must be"):
        pose_loss(out.pose, target, mask.float())
