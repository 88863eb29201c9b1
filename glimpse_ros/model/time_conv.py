"""The backbone's temporal conv (:class:`TimePaddedConv3d`): time padding and causal stepping.

Owns how a 3D conv fills the frames beyond the clip's ends (``replicate`` or ``zeros``), its time
alignment (symmetric ``t-1, t, t+1`` or causal ``t-2, t-1, t``, DESIGN §3), and the one-frame
:meth:`TimePaddedConv3d.step` of a causal conv with what its last ``kt - 1`` input frames
contribute as explicit state, kept as partial sums of its taps
(:mod:`glimpse_ros.model.frame_ops`). The residual network built of these is
:mod:`glimpse_ros.model.backbone`.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from glimpse_ros.model.frame_ops import conv_taps


def _total(tensors: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Sum of one or more tensors (``sum()`` would add a constant 0 node to an exported graph)."""
    total = tensors[0]
    for t in tensors[1:]:
        total = total + t
    return total


class TimePaddedConv3d(nn.Conv3d):
    """Conv3d padding space with zeros and time as chosen (parameters are a plain Conv3d's).

    Departure from I3D and the released code, which zero-pad time: by default we replicate the
    first and last frame. A ``mean``-inflated network is then exactly the 2D network on a static
    clip at every frame (with zeros the border frames see a darker neighbour, and after 16 blocks
    all 8 frames of a window are affected), and the first/last frames of a short streaming window
    are not attenuated. A ``center``-inflated network is unaffected (its side taps are zero).

    ``causal=True`` (departure from the paper, for streaming): output frame t sees input frames
    ``t-kt+1 .. t``; the clip is left-padded with ``kt - 1`` fill frames and nothing is padded on
    the right. :meth:`step` computes one output frame from the new input frame and partial sums of
    the previous ``kt - 1`` (the state); a fresh state is filled exactly as the clip's left
    padding.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int, int],
                 stride: tuple[int, int, int], temporal_padding: str,
                 causal: bool = False) -> None:
        """Build the conv; spatial padding is kh//2, kw//2, temporal padding kt//2 frames."""
        if temporal_padding not in ("replicate", "zeros"):
            raise ValueError(f"temporal_padding: {temporal_padding!r} is not replicate or zeros")
        kt, kh, kw = kernel
        replicate = temporal_padding == "replicate"
        # Time is padded in forward() except for symmetric zero padding, which Conv3d does.
        native = not replicate and not causal
        super().__init__(in_channels, out_channels, kernel, stride=stride,
                         padding=(kt // 2 if native else 0, kh // 2, kw // 2), bias=False)
        self.time_pad = kt // 2
        self.replicate = replicate
        self.causal = causal
        self.state_frames = kt - 1  # input frames a causal step keeps

    def _fill(self, edge: torch.Tensor, n: int) -> torch.Tensor:
        """``n`` padding frames next to ``edge`` (B, Cin, 1, H, W): (B, Cin, n, H, W)."""
        if self.replicate and n > 0:
            # Slice + concat rather than F.pad(mode="replicate"): exports to plain ONNX ops that
            # every engine supports.
            return torch.cat([edge] * n, dim=2)
        return torch.zeros_like(edge).expand(-1, -1, n, -1, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Convolve (B, Cin, T, H, W) into (B, Cout, T, H/s, W/s)."""
        if self.causal and self.state_frames > 0:
            x = torch.cat([self._fill(x[:, :, :1], self.state_frames), x],
                          dim=2)  # (B, Cin, T+kt-1, H, W)
        elif self.replicate and self.time_pad > 0:
            p = self.time_pad
            x = torch.cat([self._fill(x[:, :, :1], p), x, self._fill(x[:, :, -1:], p)],
                          dim=2)  # (B, Cin, T+2p, H, W)
        return super().forward(x)

    def step(self, x: torch.Tensor, state: Optional[Sequence[torch.Tensor]],
             fresh: Optional[torch.Tensor] = None
             ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """Convolve one frame of a causal conv (4D tensors, :mod:`~glimpse_ros.model.frame_ops`).

        The state holds partial sums, not frames: ``S_j`` (``j = 1 .. kt-1``) is what the frames
        seen so far contribute to the output ``j`` frames ahead. With the taps ``y_τ`` of the new
        frame (``τ = 0`` is the newest tap, the one that meets this frame), output
        ``= y_0 + S_1`` and the new ``S_j = y_j + S_{j+1}`` (``S_kt = 0``). At a sequence start
        the padding frames are copies of the first frame (``replicate``:
        ``S_j = Σ_{τ >= j} y_τ``) or zeros. Each ``S_j`` is its own tensor: an exported graph
        then neither splits nor concatenates the state every frame.

        Args:
            x: ``(B, Cin, H, W)`` the new input frame.
            state: ``kt - 1`` tensors ``(B, Cout, H/s, W/s)``, ``S_1 .. S_{kt-1}``; None at the
                start of a sequence.
            fresh: optional ``(B,)`` bool: rows where a sequence starts (their ``state`` is
                ignored); lets a traced graph take a state at every call.

        Returns:
            ``(y (B, Cout, H/s, W/s), new_state)``, ``new_state`` ``kt - 1`` tensors like
            ``state``.
        """
        if not self.causal:
            raise ValueError("only a causal conv can step (temporal_padding: causal)")
        taps = conv_taps(self, x)  # kt x (B, Cout, H', W'), newest tap first
        kt = len(taps)
        if kt == 1:  # no temporal extent: nothing to carry
            return taps[0], ()
        if state is not None and len(state) != kt - 1:
            raise ValueError(f"state: {len(state)} partial sums, expected {kt - 1}")
        if state is None or fresh is not None:
            if self.replicate:  # the first frame repeated before the sequence
                fill = [_total(taps[j:]) for j in range(1, kt)]
            else:
                fill = [torch.zeros_like(taps[0]) for _ in range(1, kt)]
        if state is None:
            partial = fill
        elif fresh is not None:
            rows = fresh.view(-1, 1, 1, 1)
            partial = [torch.where(rows, f, s) for f, s in zip(fill, state)]
        else:
            partial = list(state)
        new = tuple([taps[j] + partial[j] for j in range(1, kt - 1)] + [taps[kt - 1]])
        return taps[0] + partial[0], new


__all__ = ["TimePaddedConv3d"]
