"""Pose regression from the frame context vector (paper §4.4, eq. 13); used for training only."""

from __future__ import annotations

import torch
from torch import nn


class PoseHead(nn.Module):
    """``ŷp_t = W_pᵀ c_t``, squashed with ``tanh`` into ``[-1, 1]`` crop-normalised coordinates.

    The paper's map is linear; the ``tanh`` keeps predictions inside the image like the targets.

    Args:
        context_dim: size of ``c_t``.
        num_bodies: bodies per frame (2 for NTU RGB+D).
        num_joints: joints per body (25 for Kinect v2).
    """

    def __init__(self, context_dim: int, num_bodies: int, num_joints: int) -> None:
        super().__init__()
        self.num_bodies = num_bodies
        self.num_joints = num_joints
        self.linear = nn.Linear(context_dim, num_bodies * num_joints * 2)

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        """Regress 2D joints.

        Args:
            c: ``(B, T, Dc)`` context vectors.

        Returns:
            ``(B, T, num_bodies, num_joints, 2)`` joint ``(x, y)`` in ``[-1, 1]``.
        """
        batch, frames = c.shape[:2]
        pose = torch.tanh(self.linear(c))  # (B, T, bodies * J * 2)
        return pose.view(batch, frames, self.num_bodies, self.num_joints, 2)  # (B, T, 2, J, 2)
