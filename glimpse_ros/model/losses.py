"""Training losses (paper §5, eq. 14-17): ``L = L_D + λ_P L_P + λ_G L_G``.

Joint coordinates (targets of the pose head and attractors of the glimpses) are in the same
normalised coordinates as the glimpses: ``(x, y)`` in ``[-1, 1]`` of the network input crop, ``-1``
at the left/top pixel centre. Shape legend: B batch, T frames, G glimpses, J joints, N classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

from glimpse_ros.model.glimpse_clouds import ClipOutput

# Floor for squared distances: sqrt has an infinite gradient at 0.
_EPS = 1e-12


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms.

    The paper sums the three terms unweighted (eq. 14); the released code used ``λ_P = 0.1``.
    """

    classification: float = 1.0
    pose: float = 1.0
    glimpse: float = 1.0

    def __post_init__(self) -> None:
        """Refuse negative weights."""
        for name in ("classification", "pose", "glimpse"):
            if getattr(self, name) < 0:
                raise ValueError(f"loss weight {name} must be >= 0, got {getattr(self, name)}")


def _check_pose_shapes(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> None:
    if pred.dim() != 5 or pred.shape[-1] != 2 or target.shape != pred.shape:
        raise ValueError(f"pred and target must both be (B, T, bodies, J, 2), got "
                         f"{tuple(pred.shape)} and {tuple(target.shape)}")
    if mask.shape != pred.shape[:-1] or mask.dtype != torch.bool:
        raise ValueError(f"mask must be bool {tuple(pred.shape[:-1])}, got {mask.dtype} "
                         f"{tuple(mask.shape)}")


def pose_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked MSE of the regressed joints, best of the two body orderings per sample (``L_P``).

    Bodies have no canonical order in the data, so with two bodies each sample is scored against
    both orderings of the targets and the lower error is kept. Joints where ``mask`` is false
    (invisible joints, missing second body, missing skeleton) are ignored, and so are their target
    values (they may be NaN). Samples without any visible joint do not count; if no sample has one
    the loss is 0.

    Args:
        pred: ``(B, T, bodies, J, 2)`` predicted joints.
        target: ``(B, T, bodies, J, 2)`` ground-truth joints.
        mask: ``(B, T, bodies, J)`` bool, true where the target joint is valid.

    Returns:
        Scalar loss.
    """
    _check_pose_shapes(pred, target, mask)
    target = torch.where(mask.unsqueeze(-1), target, torch.zeros_like(target))
    orderings = [(target, mask)]
    if pred.shape[2] == 2:
        orderings.append((target.flip(2), mask.flip(2)))  # bodies swapped
    # The better ordering is chosen once per clip, not per frame: a skeleton tracker keeps body
    # identities within a clip (NTU does), and a per-frame choice could swap bodies mid-clip.
    errors = []
    for tgt, msk in orderings:
        sq = (pred - tgt).pow(2) * msk.unsqueeze(-1).to(pred.dtype)  # (B, T, bodies, J, 2)
        errors.append(sq.sum(dim=(1, 2, 3, 4)))  # (B,)
    best = torch.stack(errors, dim=0).amin(dim=0)  # (B,)
    count = mask.sum(dim=(1, 2, 3)).to(pred.dtype) * 2.0  # (B,) visible coordinates
    has = count > 0  # (B,)
    per_sample = best / count.clamp_min(1.0)  # (B,)
    return (per_sample * has.to(pred.dtype)).sum() / has.sum().clamp_min(1).to(pred.dtype)


def _distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distance over the last dim; exactly 0 (with a zero gradient) at coincidence."""
    sq = (a - b).pow(2).sum(dim=-1)
    return torch.where(sq > _EPS, torch.sqrt(sq.clamp_min(_EPS)), torch.zeros_like(sq))


def glimpse_loss(glimpses: torch.Tensor, joints: Optional[torch.Tensor],
                 mask: Optional[torch.Tensor]) -> torch.Tensor:
    """Diversity + attraction-to-humans loss on glimpse centres (``L_G``, eq. 15-17).

    Per frame ``1 / (1 + Σ_{g1,g2} ‖l_{g1} - l_{g2}‖) + Σ_g min_j ‖l_g - y_j‖`` on the centres,
    where ``j`` runs over the visible joints of all bodies. Frames without a visible joint (or
    ``joints=None``) contribute only the diversity term. The paper sums over frames; we average
    over frames and samples so the weight does not depend on the clip length.

    Args:
        glimpses: ``(B, T, G, 4)`` ``[x, y, sx, sy]``.
        joints: ``(B, T, bodies, J, 2)`` joints, or ``None``.
        mask: ``(B, T, bodies, J)`` bool, or ``None`` (with ``joints=None``).

    Returns:
        Scalar loss.
    """
    if glimpses.dim() != 4 or glimpses.shape[-1] != 4:
        raise ValueError(f"glimpses must be (B, T, G, 4), got {tuple(glimpses.shape)}")
    batch, frames, num_glimpses = glimpses.shape[:3]
    centres = glimpses[..., :2]  # (B, T, G, 2)
    pairwise = _distance(centres.unsqueeze(3), centres.unsqueeze(2))  # (B, T, G, G)
    off_diagonal = ~torch.eye(num_glimpses, dtype=torch.bool, device=glimpses.device)
    # Σ over ordered pairs (g1, g2), g1 ≠ g2, as eq. 15 is written: each pair counts twice.
    spread = (pairwise * off_diagonal.to(pairwise.dtype)).sum(dim=(2, 3))  # (B, T)
    diversity = 1.0 / (1.0 + spread)  # (B, T)
    if joints is None:
        return diversity.mean()
    if mask is None:
        raise ValueError("mask is required with joints")
    if joints.shape[:2] != (batch, frames):
        raise ValueError(f"joints {tuple(joints.shape)} do not match glimpses "
                         f"{tuple(glimpses.shape)}")
    _check_pose_shapes(joints, joints, mask)
    points = joints.reshape(batch, frames, -1, 2)  # (B, T, bodies * J, 2)
    visible = mask.reshape(batch, frames, -1)  # (B, T, bodies * J)
    points = torch.where(visible.unsqueeze(-1), points, torch.zeros_like(points))
    to_joint = _distance(centres.unsqueeze(3), points.unsqueeze(2))  # (B, T, G, bodies * J)
    big = torch.finfo(to_joint.dtype).max
    nearest = to_joint.masked_fill(~visible.unsqueeze(2), big).amin(dim=-1)  # (B, T, G)
    any_visible = visible.any(dim=-1)  # (B, T)
    attraction = torch.where(any_visible, nearest.sum(dim=-1),
                             torch.zeros_like(diversity))  # (B, T)
    return (diversity + attraction).mean()


def total_loss(out: ClipOutput, labels: torch.Tensor, joints: Optional[torch.Tensor],
               mask: Optional[torch.Tensor], weights: LossWeights = LossWeights(),
               global_only: bool = False) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Weighted sum of the classification, pose and glimpse losses.

    ``L_D`` is the cross-entropy of the head's logits at every frame, averaged over frames
    ("training averages over time steps"), so every streaming step is trained to predict the label.
    With ``global_only`` (stage 1, paper §6) it is the cross-entropy of ``global_logits`` and there
    is no glimpse term. Without skeletons (``joints=None``) the pose term is 0 and the glimpse term
    keeps only its diversity part.

    Args:
        out: model outputs.
        labels: ``(B,)`` long class indices.
        joints: ``(B, T, bodies, J, 2)`` or ``None``.
        mask: ``(B, T, bodies, J)`` bool or ``None``.
        weights: loss weights.
        global_only: stage-1 loss.

    Returns:
        ``(loss, parts)`` where ``parts`` holds detached scalars ``classification``, ``pose``,
        ``glimpse`` and ``total``.
    """
    if joints is not None and mask is None:
        raise ValueError("mask is required with joints")
    if global_only:
        classification = F.cross_entropy(out.global_logits, labels)
    else:
        if out.step_logits is None or out.glimpses is None:
            raise ValueError("out has no head outputs; was it produced with global_only=True?")
        batch, frames, classes = out.step_logits.shape
        per_step = out.step_logits.reshape(batch * frames, classes)  # (B * T, N)
        classification = F.cross_entropy(per_step, labels.repeat_interleave(frames))
    zero = classification.new_zeros(())
    pose = pose_loss(out.pose, joints, mask) if joints is not None else zero
    attention = zero if global_only else glimpse_loss(out.glimpses, joints, mask)
    loss = (weights.classification * classification + weights.pose * pose
            + weights.glimpse * attention)
    parts = {"classification": classification.detach(), "pose": pose.detach(),
             "glimpse": attention.detach(), "total": loss.detach()}
    return loss, parts
