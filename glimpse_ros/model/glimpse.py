"""Differentiable glimpse crop (paper §3.3) and the glimpse location head (paper eq. 3).

Glimpse vector convention (shared with pose joints, L_G targets, the runtime and the ROS layer,
DESIGN §2 "One coordinate frame"): ``[x, y, sx, sy]`` where ``(x, y)`` is the centre in
``(-1, 1)`` normalised coordinates of the network INPUT crop (-1 is the left/top pixel centre, +1
the right/bottom one: pixel ``(u + 1) (S - 1) / 2`` of an ``S``-pixel crop) and ``(sx, sy)`` in
``(0, 1)`` are the half-extents of the box in the same units, so the box spans
``[x - sx, x + sx] x [y - sy, y + sy]`` of the input crop.

The crop reads the layer4 map ``Z``: a point of the input crop is mapped onto it through the
backbone's receptive-field centres (``receptive_field.py``; cell ``i`` at input pixel ``32 i``),
so the crop needs the input size the map was computed from. Departure from the paper's eq. 4,
whose source coordinates are those of the feature map (a glimpse at ``x = +1`` would then sit on
the last cell, whose centre is input pixel 192 of a 224 crop, so the joints L_G attracts
glimpses to and the boxes drawn by the ROS layer would be in another frame).

Borders (``ModelConfig.glimpse_border``): the last cell centre of a 224 crop is pixel 192, so the
right / bottom 14 % of the image (and any box reaching past the crop) lies beyond the cell
centres. ``"clamp"`` (new models) reads the edge cell there, as RoIAlign does just past the
border and ``grid_sample(padding_mode="border")`` does everywhere: a glimpse never blends with
zeros. ``"zeros"`` is the paper's kernel taken literally (zeros outside the map); it attenuated
the right / bottom edge (a glimpse centred at ``x = +0.9`` on a map holding its column index read
2.3 instead of 6) and is kept only for models trained with it (files written before the field
existed load as ``"zeros"``, see ``checkpoint.py``).
"""

from __future__ import annotations

import warnings
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from glimpse_ros.config import GLIMPSE_BORDERS
from glimpse_ros.model.receptive_field import layer4_map

_PADDING = {"clamp": "border", "zeros": "zeros"}  # grid_sample's name for each border rule


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


def _check_sizes(feature: torch.Tensor, input_size: tuple[int, int]) -> tuple[int, int]:
    """Validate ``feature`` ``(B, D, h, w)`` and ``input_size`` ``(H, W)``; return ``(H, W)``."""
    if feature.dim() != 4:
        raise ValueError(f"feature must be (B, D, H, W), got {tuple(feature.shape)}")
    if len(input_size) != 2 or min(int(input_size[0]), int(input_size[1])) < 1:
        raise ValueError(f"input_size must be (H, W) >= 1, got {input_size}")
    return int(input_size[0]), int(input_size[1])


def feature_theta(glimpse: torch.Tensor, input_size: tuple[int, int],
                  feature_size: tuple[int, int]) -> torch.Tensor:
    """Eq. 4 moved onto the layer4 map, in ``grid_sample``'s ``align_corners=False`` units.

    An input-crop point ``u`` lies on cell ``a u + b`` of the map (``ReceptiveFieldMap``); cell
    ``i`` of a ``w``-cell axis is ``(2 i + 1) / w - 1`` for ``grid_sample(align_corners=False)``,
    which, unlike ``align_corners=True``, is defined for a 1-cell axis too.

    Args:
        glimpse: ``(B, 4)`` glimpses ``[x, y, sx, sy]`` in input-crop coordinates.
        input_size: ``(H, W)`` pixels of the network input crop.
        feature_size: ``(h, w)`` cells of the layer4 map.

    Returns:
        ``(B, 2, 3)`` matrices mapping ``affine_grid(align_corners=True)`` target points onto the
        feature map.
    """
    theta = glimpse_theta(glimpse)  # (B, 2, 3) in input-crop units
    rf = layer4_map()
    rows = []
    for axis in (0, 1):  # x uses the width, y the height
        a, b = rf.cell_affine(input_size[1 - axis])
        cells = feature_size[1 - axis]
        # grid = (2 (a u + b) + 1) / w - 1 with u = theta_row . [x_t, y_t, 1]
        row = theta[:, axis] * (2.0 * a / cells)  # (B, 3)
        shift = torch.zeros_like(row)
        shift[:, 2] = (2.0 * b + 1.0) / cells - 1.0
        rows.append(row + shift)
    return torch.stack(rows, dim=1)  # (B, 2, 3)


def _check_border(border: str) -> str:
    """Return ``border`` when it is one of ``GLIMPSE_BORDERS``; raise ``ValueError`` otherwise."""
    if border not in GLIMPSE_BORDERS:
        raise ValueError(f"border must be one of {', '.join(GLIMPSE_BORDERS)}, got {border!r}")
    return border


def crop(feature: torch.Tensor, glimpse: torch.Tensor, input_size: tuple[int, int],
         out_size: Optional[tuple[int, int]] = None, border: str = "clamp") -> torch.Tensor:
    """Bilinearly resample the glimpse region of a feature map (a minimal spatial transformer).

    The paper's bilinear kernel ``sum Z(m, n) max(0, 1 - |x - n|) max(0, 1 - |y - m|)`` where
    ``(x, y)`` is the sample point in cell units (through the receptive-field map); beyond the
    first / last cell centre ``border="clamp"`` moves the point onto that centre (the edge cell's
    value), ``border="zeros"`` blends with zeros (module docstring). The operation is
    differentiable with respect to both the feature map and the glimpse parameters.

    Args:
        feature: ``(B, D, h, w)`` feature map ``Z_t``.
        glimpse: ``(B, 4)`` glimpses ``[x, y, sx, sy]`` in input-crop coordinates.
        input_size: ``(H, W)`` pixels of the network input ``Z_t`` was computed from.
        out_size: ``(H', W')`` of the sampled grid; defaults to the map size ``(h, w)``.
        border: ``"clamp"`` or ``"zeros"`` (``ModelConfig.glimpse_border``).

    Returns:
        ``(B, D, H', W')`` glimpse feature map ``Z_{t,g}``.
    """
    input_size = _check_sizes(feature, input_size)
    padding = _PADDING[_check_border(border)]
    if glimpse.shape[0] != feature.shape[0]:
        raise ValueError(f"batch mismatch: feature {feature.shape[0]}, glimpse {glimpse.shape[0]}")
    batch, channels, height, width = feature.shape
    out_h, out_w = out_size if out_size is not None else (height, width)
    theta = feature_theta(glimpse, input_size, (height, width)).to(feature.dtype)  # (B, 2, 3)
    size = [batch, channels, out_h, out_w]
    with warnings.catch_warnings():
        # A 1-pixel output axis samples the glimpse centre; torch warns that this changed in
        # 1.3.0 even though align_corners is given. That centre sample is what we want.
        if out_h == 1 or out_w == 1:
            warnings.filterwarnings("ignore", message="Since version 1.3.0, affine_grid",
                                    category=UserWarning)
        # Target points span the box edge to edge (align_corners=True); theta already maps them
        # to align_corners=False source units.
        grid = F.affine_grid(theta, size, align_corners=True)  # (B, H', W', 2)
    return F.grid_sample(feature, grid, mode="bilinear", padding_mode=padding,
                         align_corners=False)  # (B, D, H', W')


def _mean_tent_weights(centre: torch.Tensor, scale: torch.Tensor, out_steps: int,
                       in_steps: int, affine: tuple[float, float],
                       clamp: bool) -> torch.Tensor:
    """Average bilinear (tent) weight of each feature cell along one axis.

    Args:
        centre: ``(B,)`` glimpse centre on this axis (input-crop coordinates).
        scale: ``(B,)`` glimpse half-extent on this axis.
        out_steps: number of sampling points on this axis.
        in_steps: number of feature cells on this axis.
        affine: ``(a, b)``: input-crop coordinate ``u`` lies on cell ``a u + b``.
        clamp: move points beyond the first / last cell centre onto it (``border="clamp"``);
            otherwise they keep their position and blend with zeros.

    Returns:
        ``(B, in_steps)``: ``mean_i max(0, 1 - |p_i - n|)`` over the sampling points ``p_i`` (cell
        units), i.e. how much cell ``n`` contributes to the pooled glimpse along this axis.
    """
    # Sampling points as affine_grid places them (align_corners=True; a single point sits at 0).
    # Integer aranges cast afterwards: float aranges/linspace export to ONNX as double.
    base = torch.arange(out_steps, device=centre.device).to(centre.dtype)  # (out,)
    base = base * (2.0 / (out_steps - 1)) - 1.0 if out_steps > 1 else base
    source = scale.unsqueeze(1) * base + centre.unsqueeze(1)  # (B, out) input-crop coords
    cell = source * affine[0] + affine[1]  # (B, out) cell coords
    if clamp:  # grid_sample's border rule: the coordinate is clipped to [0, in - 1]
        cell = cell.clamp(0.0, float(in_steps - 1))
    index = torch.arange(in_steps, device=centre.device).to(centre.dtype)  # (in,)
    tent = torch.relu(1.0 - (cell.unsqueeze(2) - index).abs())  # (B, out, in)
    return tent.mean(dim=1)  # (B, in)


def glimpse_features(feature: torch.Tensor, glimpse: torch.Tensor, input_size: tuple[int, int],
                     out_size: Optional[tuple[int, int]] = None,
                     border: str = "clamp") -> torch.Tensor:
    """Crop a glimpse and global-average-pool it (paper eq. 1).

    Equal to ``crop(feature, glimpse, input_size, out_size, border).mean((2, 3))`` but computed
    without materialising the crop: with an axis-aligned ``θ`` the sampling grid is separable and
    bilinear sampling is linear in ``Z`` (clamping moves the points, it keeps the separability), so
    the pooled glimpse is ``Σ_{m,n} Z[:, m, n] a_y[m] a_x[n]`` where ``a_x``, ``a_y`` are the mean
    tent weights along each axis. Samples beyond the cell centres follow ``border`` exactly as in
    ``crop``. This is several times faster than ``grid_sample`` on a 2048-channel map and keeps
    the gradient with respect to the glimpse (through the tent weights).

    Args:
        feature: ``(B, D, h, w)`` feature map ``Z_t``.
        glimpse: ``(B, 4)`` glimpses ``[x, y, sx, sy]`` in input-crop coordinates.
        input_size: ``(H, W)`` pixels of the network input ``Z_t`` was computed from.
        out_size: sampling grid size, defaults to ``(h, w)``.
        border: ``"clamp"`` or ``"zeros"`` (``ModelConfig.glimpse_border``).

    Returns:
        ``(B, D)`` glimpse features ``z_{t,g}``.
    """
    input_size = _check_sizes(feature, input_size)
    clamp = _check_border(border) == "clamp"
    # Shape checks are skipped while tracing (they would be recorded as constants, with warnings).
    if not torch.jit.is_tracing() and glimpse.shape != (feature.shape[0], 4):
        raise ValueError(f"glimpse must be ({feature.shape[0]}, 4), got {tuple(glimpse.shape)}")
    height, width = feature.shape[2:]
    out_h, out_w = out_size if out_size is not None else (height, width)
    rf = layer4_map()
    glimpse = glimpse.to(feature.dtype)
    a_x = _mean_tent_weights(glimpse[:, 0], glimpse[:, 2], out_w, width,
                             rf.cell_affine(input_size[1]), clamp)  # (B, w)
    a_y = _mean_tent_weights(glimpse[:, 1], glimpse[:, 3], out_h, height,
                             rf.cell_affine(input_size[0]), clamp)  # (B, h)
    weights = (a_y.unsqueeze(2) * a_x.unsqueeze(1)).flatten(1)  # (B, h * w)
    pooled = torch.bmm(feature.flatten(2), weights.unsqueeze(2))  # (B, D, h*w) @ (B, h*w, 1)
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

    def frame(self, z_t: torch.Tensor, input_size: tuple[int, int]) -> None:
        """Per-frame part of the head: none (eq. 3 does not read the map; see ``map_locator``)."""
        return None

    def forward(self, h: torch.Tensor, c: torch.Tensor, frame: None = None) -> torch.Tensor:
        """Predict one glimpse per sample.

        Args:
            h: ``(B, Hg)`` glimpse-GRU hidden state.
            c: ``(B, Dc)`` frame context vector.
            frame: ``frame(...)``'s ``None`` (the interface of ``MapLocator``).

        Returns:
            ``(B, 4)`` glimpse ``[x, y, sx, sy]``.
        """
        raw = self.linear(torch.cat([h, c], dim=1))  # (B, 4)
        centre = torch.tanh(raw[:, :2])  # (B, 2)
        scale = torch.sigmoid(raw[:, 2:])  # (B, 2)
        return torch.cat([centre, scale], dim=1)  # (B, 4)


def random_glimpses(batch: int, generator: torch.Generator) -> torch.Tensor:
    """Uniform random boxes over the location head's output range (ablation, paper Table 4).

    Centres are uniform in ``(-1, 1)`` and half-extents in ``(0, 1)``: the ranges of
    ``GlimpseLocator``'s ``tanh`` and ``sigmoid``, so a random box is any box the model could
    have chosen.

    Args:
        batch: number of boxes ``B``.
        generator: CPU generator the boxes are drawn from.

    Returns:
        ``(B, 4)`` float32 CPU glimpses ``[x, y, sx, sy]``.
    """
    u = torch.rand(batch, 4, generator=generator)  # (B, 4) in [0, 1)
    return torch.cat([2.0 * u[:, :2] - 1.0, u[:, 2:]], dim=1)  # (B, 4)
