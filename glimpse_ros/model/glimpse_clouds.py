"""The composed Glimpse Clouds model: inflated ResNet backbone + recurrent head + pose head.

Shape legend: B batch, T frames, G glimpses, C workers, N classes, J joints, D feature dim.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from glimpse_ros.config import ModelConfig
from glimpse_ros.model.backbone import BackboneState, InflatedResNet
from glimpse_ros.model.head import GlimpseCloudsHead
from glimpse_ros.model.pose import PoseHead
from glimpse_ros.model.state import HeadState, StepOutput


@dataclass
class ClipOutput:
    """Outputs of a clip forward.

    Attributes:
        logits: ``(B, N)`` final logits (the head's mean over frames; ``global_logits`` when the
            head is skipped).
        step_logits: ``(B, T, N)`` per-frame head logits, ``None`` with ``global_only``.
        worker_logits: ``(B, T, C, N)``, ``None`` with ``global_only``.
        glimpses: ``(B, T, G, 4)`` ``[x, y, sx, sy]`` in input-crop coordinates (the frame of
            ``pose``), ``None`` with ``global_only``.
        assignment: ``(B, T, C, G)`` soft assignment of glimpses to workers, ``None`` with
            ``global_only``.
        pose: ``(B, T, bodies, J, 2)`` regressed joints in ``[-1, 1]``.
        global_logits: ``(B, N)`` the global model's classifier on pooled ``Z`` (paper §6,
            stage 1); ``None`` for the full model (not computed: no stage-2 loss uses it),
            except with ``global_fusion``, whose ``logits`` add it to the head's.
    """

    logits: torch.Tensor
    step_logits: Optional[torch.Tensor]
    worker_logits: Optional[torch.Tensor]
    glimpses: Optional[torch.Tensor]
    assignment: Optional[torch.Tensor]
    pose: torch.Tensor
    global_logits: Optional[torch.Tensor]


@dataclass
class StreamState:
    """State of a causal model between frames: backbone buffers and the head's recurrent state."""

    backbone: BackboneState
    head: HeadState


class GlimpseClouds(nn.Module):
    """Glimpse Clouds (Baradel et al., CVPR 2018) on one set of weights for clip and step use.

    Attributes:
        config: the ``ModelConfig`` it was built from.
        backbone: ``InflatedResNet``, ``x (B, 3, T, H, W) -> (Z (B, D, T, h, w), c (B, T, Dc))``.
        head: ``GlimpseCloudsHead`` (also usable frame by frame through ``head.step``).
        pose_head: ``PoseHead``, ``c -> (B, T, bodies, J, 2)``.
        global_fc: ``Linear(D, N)`` on globally pooled ``Z``: the stage-1 global classifier, which
            the paper removes afterwards; we keep it so stage-1 checkpoints load into the full
            model.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        self.backbone = InflatedResNet(cfg)
        self.head = GlimpseCloudsHead(cfg)
        self.pose_head = PoseHead(cfg.context_dim, cfg.num_bodies, cfg.num_joints)
        self.global_fc = nn.Linear(cfg.feature_dim, cfg.num_classes)

    def forward(self, x: torch.Tensor, global_only: bool = False,
                glimpses: Optional[torch.Tensor] = None) -> ClipOutput:
        """Run a clip.

        Args:
            x: ``(B, 3, T, H, W)`` ImageNet-normalised frames.
            global_only: skip the recurrent head (stage-1 training of the global model).
            glimpses: ``(B, T, G, 4)`` boxes of an ``oracle`` model (``glimpse_locations``).

        Returns:
            ``ClipOutput``.
        """
        if x.dim() != 5 or x.shape[1] != 3:
            raise ValueError(f"x must be (B, 3, T, H, W), got {tuple(x.shape)}")
        Z, c = self.backbone(x)  # noqa: N806 - (B, D, T, h, w), (B, T, Dc)
        return self.forward_features(Z, c, global_only=global_only,
                                     input_size=(x.shape[3], x.shape[4]), glimpses=glimpses)

    def forward_features(self, Z: torch.Tensor, c: torch.Tensor,  # noqa: N803 - paper's Z
                         global_only: bool = False,
                         input_size: Optional[tuple[int, int]] = None,
                         glimpses: Optional[torch.Tensor] = None) -> ClipOutput:
        """Run everything after the backbone, e.g. on features computed by a runtime engine.

        Args:
            Z: ``(B, D, T, h, w)`` layer4 features.
            c: ``(B, T, Dc)`` context vectors.
            global_only: skip the recurrent head.
            input_size: ``(H, W)`` of the input clip; defaults to ``config.crop_size`` square.
            glimpses: ``(B, T, G, 4)`` boxes of an ``oracle`` model.

        Returns:
            ``ClipOutput``.
        """
        pose = self.pose_head(c)  # (B, T, bodies, J, 2)
        if global_only:
            global_logits = self.global_fc(Z.mean(dim=(2, 3, 4)))  # (B, N)
            return ClipOutput(logits=global_logits, step_logits=None, worker_logits=None,
                              glimpses=None, assignment=None, pose=pose,
                              global_logits=global_logits)
        # The paper removes the global classifier after stage 1 (§6) and finds no gain in keeping
        # it (Table 3), so the full model does not compute it: an output no loss uses would also
        # leave DDP waiting for gradients that never come.
        out = self.head(Z, c, input_size, glimpses)
        logits, step_logits, global_logits = out.logits, out.step_logits, None
        if self.config.global_fusion:  # Table 3's last row: global model + glimpse cloud
            # The clip's global logits join every step's (the per-step loss then trains both).
            global_logits = self.global_fc(Z.mean(dim=(2, 3, 4)))  # (B, N)
            logits = logits + global_logits
            step_logits = step_logits + global_logits.unsqueeze(1)  # (B, T, N)
        return ClipOutput(logits=logits, step_logits=step_logits,
                          worker_logits=out.worker_logits, glimpses=out.glimpses,
                          assignment=out.assignment, pose=pose, global_logits=global_logits)

    def step(self, frame: torch.Tensor, state: Optional[StreamState] = None
             ) -> tuple[StreamState, StepOutput]:
        """Run one frame through a causal model (backbone step, then head step).

        Args:
            frame: ``(B, 3, H, W)`` ImageNet-normalised frame.
            state: the state after the previous frame; None at the start of a sequence.

        Returns:
            ``(new_state, outputs)``; stepping the frames of a clip from a fresh state gives the
            clip forward's per-frame outputs (``step_logits[:, t]``, ``glimpses[:, t]``, ...).

        Raises:
            ValueError: on a model with ``temporal_padding: symmetric`` (see
                ``InflatedResNet.step``) or a frame of the wrong shape.
        """
        z_t, c_t, backbone_state = self.backbone.step(
            frame, None if state is None else state.backbone)  # (B, D, h, w), (B, Dc)
        head_state = (self.head.initial_state(frame.shape[0], device=z_t.device, dtype=z_t.dtype)
                      if state is None else state.head)
        head_state, out = self.head.step(head_state, z_t, c_t,
                                         input_size=(frame.shape[2], frame.shape[3]))
        return StreamState(backbone=backbone_state, head=head_state), out
