"""Oracle glimpses: boxes on the actor's ground-truth joints (ablation, ``glimpse_locations``).

The upper bound of the glimpse path: instead of the learned locator, glimpse ``g`` of every
frame is centred on the mean of the visible joints of cluster ``g`` of the actor (body 0, the
joints the losses see), with a fixed half-size. The clusters split the body where the synthetic
actions differ: head and arms (wave, clap, punch, raise hands, nod, bow), legs (kick, jump), and
the whole figure; more glimpses than clusters cycle through them. The synthetic actor is about
0.7 input-crop units tall (28-38 % of the frame), so boxes of half-size 0.25 cover the upper and
lower body. Coordinates are input-crop normalised (``glimpse.py``), as the joints are.
"""

from __future__ import annotations

from typing import Any

import torch

from training.synthetic.body import J

ORACLE_HALF_SIZE = 0.25
_ARMS_HEAD = ("Neck", "Head", "SpineShoulder", "ShoulderLeft", "ElbowLeft", "WristLeft",
              "HandLeft", "HandTipLeft", "ThumbLeft", "ShoulderRight", "ElbowRight",
              "WristRight", "HandRight", "HandTipRight", "ThumbRight")
_LEGS = ("HipLeft", "KneeLeft", "AnkleLeft", "FootLeft", "HipRight", "KneeRight", "AnkleRight",
         "FootRight")
ORACLE_CLUSTERS: tuple[tuple[int, ...], ...] = (
    tuple(J[n] for n in _ARMS_HEAD), tuple(J[n] for n in _LEGS), tuple(range(len(J))))


def oracle_glimpses(joints: torch.Tensor, mask: torch.Tensor, num_glimpses: int,
                    half_size: float = ORACLE_HALF_SIZE) -> torch.Tensor:
    """Boxes on the joint clusters of body 0.

    Args:
        joints: ``(B, T, bodies, J, 2)`` joints in input-crop coordinates.
        mask: ``(B, T, bodies, J)`` bool, visible joints.
        num_glimpses: ``G``.
        half_size: ``sx = sy`` of every box.

    Returns:
        ``(B, T, G, 4)`` glimpses ``[x, y, sx, sy]``. A cluster without a visible joint takes
        the mean of all visible joints of the frame, a frame without any the crop centre.
    """
    if joints.dim() != 5 or mask.shape != joints.shape[:-1]:
        raise ValueError(f"joints (B, T, bodies, J, 2) and mask (B, T, bodies, J) expected, got "
                         f"{tuple(joints.shape)} and {tuple(mask.shape)}")
    pts, vis = joints[:, :, 0].float(), mask[:, :, 0].float()     # (B, T, J, 2), (B, T, J)
    count_all = vis.sum(-1, keepdim=True)                         # (B, T, 1)
    mean_all = (pts * vis.unsqueeze(-1)).sum(-2) / count_all.clamp(min=1.0)  # (B, T, 2)
    boxes = []
    for g in range(num_glimpses):
        idx = torch.tensor(ORACLE_CLUSTERS[g % len(ORACLE_CLUSTERS)], device=joints.device)
        w = vis[..., idx]                                         # (B, T, |cluster|)
        n = w.sum(-1, keepdim=True)                               # (B, T, 1)
        centre = (pts[..., idx, :] * w.unsqueeze(-1)).sum(-2) / n.clamp(min=1.0)  # (B, T, 2)
        centre = torch.where(n > 0, centre, mean_all)             # (B, T, 2); all-hidden: 0
        size = centre.new_full(centre.shape, half_size)           # (B, T, 2)
        boxes.append(torch.cat([centre.clamp(-1.0, 1.0), size], dim=-1))
    return torch.stack(boxes, dim=2)                              # (B, T, G, 4)


def glimpse_inputs(model: torch.nn.Module, batch: dict, device: torch.device) -> dict[str, Any]:
    """Keyword arguments of ``GlimpseClouds.forward`` for ``batch``: oracle boxes when needed.

    Args:
        model: the model, or its DDP wrapper.
        batch: a loader batch with ``joints`` / ``mask`` (``(B, [clips,] T, bodies, J, ...)``;
            several clips per video are flattened into the batch axis, as ``predict`` does).
        device: where the model runs.
    """
    cfg = getattr(getattr(model, "module", model), "config", None)  # None: not GlimpseClouds
    if cfg is None or cfg.glimpse_locations != "oracle":
        return {}
    joints, mask = batch["joints"].to(device), batch["mask"].to(device)
    if joints.dim() == 6:
        joints, mask = joints.flatten(0, 1), mask.flatten(0, 1)
    return {"glimpses": oracle_glimpses(joints, mask, cfg.num_glimpses)}


__all__ = ["ORACLE_CLUSTERS", "ORACLE_HALF_SIZE", "glimpse_inputs", "oracle_glimpses"]
