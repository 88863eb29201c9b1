"""Differentiable glimpse crop (paper §3.3) and the glimpse location head (paper eq. 3).

Glimpse vector convention (shared with the runtime and the ROS layer): ``[x, y, sx, sy]`` where
``(x, y)`` is the centre in ``(-1, 1)`` normalised coordinates of the network input crop (the
``affine_grid`` convention with ``align_corners=True``: -1 is the left/top pixel centre, +1 the
right/bottom one) and ``(sx, sy)`` in ``(0, 1)`` are the half-extents of the box in the same units,
so the box spans ``[x - sx, x + sx] x [y - sy, y + sy]``.
"""

from __future__ import annotations

import warnings
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn


def glimpse_theta(glimpse: torch.Tensor) -> torch.Tensor:
    """Build the affine matrices of paper eq. 4 from glimpse vectors.

    Args:
        glimpse: ``(B, 4)`` glimpses ``[x, y, sx, sy]``.

    Returns:
        ``(B, 2, 3)`` matrices ``[[sx, 0, x], [0, sy, y]]``.
    """
    if glimpse.dim() != 2 or glimpse.shape[1] != 4:
        raise ValueError(f"glimpse must be (B, 4), got {tuple(glimpse.shape)}")
    x, y, sx, sy = glimpse.unbind(dim=1)  # each (B,)
    zero = torch.zeros_like(x)
    row0 = torch.stack([sx, zero, x], dim=1)  # (B, 3)
    row1 = torch.stack([zero, sy, y], dim=1)  # (B, 3)
    return torch.stack([row0, row1], dim=1)  # (B, 2, 3)


def crop(feature: torch.Tensor, glimpse: torch.Tensor,
         out_size: Optional[tuple[int, int]] = None) -> torch.Tensor:
    """Bilinearly resample the glimpse region of a feature map (a minimal spatial transformer).

    Sampling outside the map reads zeros, matching the paper's bilinear kernel
    ``sum Z(m, n) max(0, 1 - |x - n|) max(0, 1 - |y - m|)``. The operation is differentiable with
    respect to both the feature map and the glimpse parameters.

    Args:
        feature: ``(B, D, H, W)`` feature map ``Z_t``.
        glimpse: ``(B, 4)`` glimpses ``[x, y, sx, sy]``.
        out_size: ``(H', W')`` of the sampled grid; defaults to the input size ``(H, W)``.

    Returns:
        ``(B, D, H', W')`` glimpse feature map ``Z_{t,g}``.
    """
    if feature.dim() != 4:
        raise ValueError(f"feature must be (B, D, H, W), got {tuple(feature.shape)}")
    if glimpse.shape[0] != feature.shape[0]:
        raise ValueError(f"batch mismatch: feature {feature.shape[0]}, glimpse {glimpse.shape[0]}")
    batch, channels, height, width = feature.shape
    out_h, out_w = out_size if out_size is not None else (height, width)
    theta = glimpse_theta(glimpse).to(feature.dtype)  # (B, 2, 3)
    size = [batch, channels, out_h, out_w]
    with warnings.catch_warnings():
        # A 1-pixel output axis samples the glimpse centre; torch warns that this changed in
        # 1.3.0 even though align_corners is given. That centre sample is what we want.
        if out_h == 1 or out_w == 1:
            warnings.filterwarnings("ignore", message="Since version 1.3.0, affine_grid",
                                    category=UserWarning)
        grid = F.affine_grid(theta, size, align_corners=True)  # (B, H', W', 2)
    return F.grid_sample(feature, grid, mode="bilinear", padding_mode="zeros",
                         align_corners=True)  # (B, D, H', W')


def _mean_tent_weights(centre: torch.Tensor, scale: torch.Tensor, out_steps: int,
                       in_steps: int) -> torch.Tensor:
    """Average bilinear (tent) weight of each input pixel along one axis.

    Args:
        centre: ``(B,)`` glimpse centre on this axis.
        scale: ``(B,)`` glimpse half-extent on this axis.
        out_steps: number of sampling points on this axis.
        in_steps: number of input pixels on this axis.

    Returns:
        ``(B, in_steps)``: ``mean_i max(0, 1 - |p_i - n|)`` over the sampling points ``p_i`` (pixel
        units), i.e. how much pixel ``n`` contributes to the pooled glimpse along this axis.
    """
    # Sampling points as affine_grid places them (align_corners=True; a single point sits at 0).
    # Integer aranges cast afterwards: float aranges/linspace export to ONNX as double.
    base = torch.arange(out_steps, device=centre.device).to(centre.dtype)  # (out,)
    base = base * (2.0 / (out_steps - 1)) - 1.0 if out_steps > 1 else base
    source = scale.unsqueeze(1) * base + centre.unsqueeze(1)  # (B, out) normalised coords
    pixel = (source + 1.0) * (0.5 * (in_steps - 1))  # (B, out) pixel coords
    index = torch.arange(in_steps, device=centre.device).to(centre.dtype)  # (in,)
    tent = torch.relu(1.0 - (pixel.unsqueeze(2) - index).abs())  # (B, out, in)
    return tent.mean(dim=1)  # (B, in)


def glimpse_features(feature: torch.Tensor, glimpse: torch.Tensor,
                     out_size: Optional[tuple[int, int]] = None) -> torch.Tensor:
    """Crop a glimpse and global-average-pool it (paper eq. 1).

    Equal to ``crop(feature, glimpse, out_size).mean((2, 3))`` but computed without materialising
    the crop: with an axis-aligned ``θ`` the sampling grid is separable and bilinear sampling is
    linear in ``Z``, so the pooled glimpse is ``Σ_{m,n} Z[:, m, n] a_y[m] a_x[n]`` where ``a_x``,
    ``a_y`` are the mean tent weights along each axis. Out-of-map samples read zeros exactly as in
    ``crop``. This is several times faster than ``grid_sample`` on a 2048-channel map and keeps
    the gradient with respect to the glimpse (through the tent weights).

    Args:
        feature: ``(B, D, H, W)`` feature map ``Z_t``.
        glimpse: ``(B, 4)`` glimpses ``[x, y, sx, sy]``.
        out_size: sampling grid size, defaults to ``(H, W)``.

    Returns:
        ``(B, D)`` glimpse features ``z_{t,g}``.
    """
    if feature.dim() != 4:
        raise ValueError(f"feature must be (B, D, H, W), got {tuple(feature.shape)}")
    # Shape checks are skipped while tracing (they would be recorded as constants, with warnings).
    if not torch.jit.is_tracing() and glimpse.shape != (feature.shape[0], 4):
        raise ValueError(f"glimpse must be ({feature.shape[0]}, 4), got {tuple(glimpse.shape)}")
    height, width = feature.shape[2:]
    out_h, out_w = out_size if out_size is not None else (height, width)
    glimpse = glimpse.to(feature.dtype)
    a_x = _mean_tent_weights(glimpse[:, 0], glimpse[:, 2], out_w, width)  # (B, W)
    a_y = _mean_tent_weights(glimpse[:, 1], glimpse[:, 3], out_h, height)  # (B, H)
    weights = (a_y.unsqueeze(2) * a_x.unsqueeze(1)).flatten(1)  # (B, H * W)
    pooled = torch.bmm(feature.flatten(2), weights.unsqueeze(2))  # (B, D, H*W) @ (B, H*W, 1)
    return pooled.squeeze(2)  # (B, D)


class GlimpseLocator(nn.Module):
    """Location head ``l_g = W_l [h_g, c_t]`` (paper eq. 3) squashed into the glimpse convention.

    The paper writes a plain linear map; we squash the centre with ``tanh`` into ``(-1, 1)`` and
    the scales with ``sigmoid`` into ``(0, 1)`` so every prediction is a valid box (DESIGN §2).
    """

    def __init__(self, hidden_dim: int, context_dim: int) -> None:
        super().__init__()
        self.hidden_dim = hidden_dim
        self.context_dim = context_dim
        self.linear = nn.Linear(hidden_dim + context_dim, 4)

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Predict one glimpse per sample.

        Args:
            h: ``(B, Hg)`` glimpse-GRU hidden state.
            c: ``(B, Dc)`` frame context vector.

        Returns:
            ``(B, 4)`` glimpse ``[x, y, sx, sy]``.
        """
        raw = self.linear(torch.cat([h, c], dim=1))  # (B, 4)
        centre = torch.tanh(raw[:, :2])  # (B, 2)
        scale = torch.sigmoid(raw[:, 2:])  # (B, 2)
        return torch.cat([centre, scale], dim=1)  # (B, 4)
