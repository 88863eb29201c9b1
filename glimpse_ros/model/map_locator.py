"""A location head that reads the frame's layer4 map (``ModelConfig.glimpse_locator: map``).

The paper's location head (eq. 3, ``GlimpseLocator``) sees the frame only through the context
vector ``c_t``, a *spatial mean* of layer3: where something is in the frame is averaged away
before the locator sees it, so a glimpse can find the actor only by searching, glimpse after
glimpse, through what the previous glimpses read (``z_{g-1}`` in Ω's input). On the distractor
scene the stage-1 pose head, linear in the same ``c_t``, puts its joints on the actor no more
often than on the distractor (docs/training.md, "Where to look"), and the learned glimpses land on
the actor 46 % of the time while glimpses placed there by hand beat the global model.

This head keeps eq. 3's inputs ``[h_g, c_t]`` as a *query* and adds what it lacks, the map:

    k_{ij} = W_k Z_t(i, j)                         keys, once per frame        (B, h w, Dk)
    a_g    = softmax_{ij}(k_{ij} · W_q [h_g, c_t] / sqrt(Dk))                  (B, h w)
    (x, y) = Σ_{ij} a_g(i, j) p_{ij}               p: cell centres, crop units (h w, 2)
    (sx, sy) = sigmoid(W_s [h_g, c_t])

so a centre is a soft arg-max over the layer4 cells (within their centres' hull: from -1 to the
last cell centre, +0.73 of a 112 crop, +0.71 of a 224 one; a 1 x 1 map leaves one place to
look, and the keys and query get no gradient), scales as in eq. 3, and the glimpse
GRU still decides, through ``h_g``, what each glimpse looks for. The gradient of L_G reaches the
keys, the query and the backbone through ``a_g``. Cost per frame: one ``D x Dk`` projection of
the ``h w`` cells and a ``Dk``-dot per cell and glimpse (paper size: 6.4 MMAC, 0.1 % of a frame).
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

from glimpse_ros.model.receptive_field import layer4_map

KEY_DIM = 64  # Dk


def cell_centres(height: int, width: int, input_size: tuple[int, int],
                 device: torch.device | None = None, dtype: torch.dtype = torch.float32
                 ) -> torch.Tensor:
    """Input-crop coordinates of the layer4 cell centres, row-major.

    Args:
        height, width: cells of the map.
        input_size: ``(H, W)`` pixels of the input crop the map was computed from.

    Returns:
        ``(height * width, 2)`` ``(x, y)`` per cell, cell ``(i, j)`` at row ``i * width + j``:
        a new tensor (the geometry is computed once per size, the head asks every frame).
    """
    centres = _cell_centres(height, width, tuple(input_size))  # float64, CPU, shared
    return centres.to(device=device, dtype=dtype, copy=True)


@functools.lru_cache(maxsize=16)
def _cell_centres(height: int, width: int, input_size: tuple[int, int]) -> torch.Tensor:
    """:func:`cell_centres` in float64 on the CPU, once per map and input size."""
    rf = layer4_map()
    a_x, b_x = rf.cell_affine(input_size[1])  # cell = a u + b
    a_y, b_y = rf.cell_affine(input_size[0])
    xs = (torch.arange(width, dtype=torch.float64) - b_x) / a_x  # (w,)
    ys = (torch.arange(height, dtype=torch.float64) - b_y) / a_y  # (h,)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")  # (h, w) each
    return torch.stack([grid_x.flatten(), grid_y.flatten()], dim=1)  # (h w, 2)


class MapLocator(nn.Module):
    """Glimpse ``[x, y, sx, sy]`` from ``[h_g, c_t]`` and the frame's layer4 map.

    Args:
        feature_dim: ``D``, channels of ``Z_t``.
        hidden_dim: ``Hg``, the glimpse GRU's hidden size.
        context_dim: ``Dc``, size of ``c_t``.
        key_dim: ``Dk``.
    """

    def __init__(self, feature_dim: int, hidden_dim: int, context_dim: int,
                 key_dim: int = KEY_DIM) -> None:
        super().__init__()
        self.key_dim = key_dim
        self.key = nn.Linear(feature_dim, key_dim)
        self.query = nn.Linear(hidden_dim + context_dim, key_dim)
        self.scale = nn.Linear(hidden_dim + context_dim, 2)

    def frame(self, z_t: torch.Tensor, input_size: tuple[int, int]
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """The per-frame part: keys of every cell and the cells' centres.

        Args:
            z_t: ``(B, D, h, w)`` layer4 map of the frame.
            input_size: ``(H, W)`` of the input crop.

        Returns:
            ``(keys (B, h w, Dk), centres (h w, 2))``.
        """
        height, width = z_t.shape[2], z_t.shape[3]
        cells = z_t.flatten(2).transpose(1, 2)  # (B, h w, D)
        keys = self.key(cells) / math.sqrt(self.key_dim)  # (B, h w, Dk)
        return keys, cell_centres(height, width, input_size, z_t.device, z_t.dtype)

    def forward(self, h: torch.Tensor, c: torch.Tensor,
                frame: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Predict one glimpse per sample.

        Args:
            h: ``(B, Hg)`` glimpse-GRU hidden state.
            c: ``(B, Dc)`` frame context vector.
            frame: ``frame(z_t, input_size)``.

        Returns:
            ``(B, 4)`` glimpse ``[x, y, sx, sy]``.
        """
        keys, centres = frame
        hc = torch.cat([h, c], dim=1)  # (B, Hg + Dc)
        query = self.query(hc)  # (B, Dk)
        scores = torch.bmm(keys, query.unsqueeze(2)).squeeze(2)  # (B, h w)
        weights = torch.softmax(scores, dim=1)  # (B, h w)
        centre = weights @ centres  # (B, 2)
        scale = torch.sigmoid(self.scale(hc))  # (B, 2)
        return torch.cat([centre, scale], dim=1)  # (B, 4)


__all__ = ["KEY_DIM", "MapLocator", "cell_centres"]
