"""Where the backbone's layer4 cells sit in the input crop (DESIGN §2, "One coordinate frame").

Glimpses, pose joints, L_G targets and overlays all live in input-crop normalised coordinates:
``u in [-1, 1]`` with ``-1`` / ``+1`` at the centres of the first / last pixel of the crop, i.e.
pixel ``n = (u + 1) (S - 1) / 2`` for a crop of ``S`` pixels. The crop of a glimpse reads the
layer4 map ``Z``, whose cell ``i`` is centred at input pixel ``offset + stride * i``. Both numbers
are derived here from the backbone's kernel/stride/padding table (``backbone.py``), not assumed:
for a window of kernel ``k``, stride ``s`` and padding ``p``, output ``j`` is centred at input
``s j + (k - 1) / 2 - p``; composing the layers gives ``offset`` and ``stride``. For the inflated
ResNet (stem k7 s2 p3, max-pool k3 s2 p1, conv2 k3 p1 with stride 1 or 2 in each stage) this is
``offset = 0``, ``stride = 32``: cell ``i`` at pixel ``32 i`` (not at ``i (S - 1) / (w - 1)``,
which the old feature-grid convention assumed).
"""

from __future__ import annotations

from dataclasses import dataclass

from glimpse_ros.model.backbone import (POOL_KERNEL, POOL_PADDING, POOL_STRIDE, STAGES,
                                        STEM_KERNEL, STEM_PADDING, STEM_STRIDE)


@dataclass(frozen=True)
class Window:
    """One spatial sliding window along an axis: kernel, stride, padding (input pixels)."""

    kernel: int
    stride: int
    padding: int


@dataclass(frozen=True)
class ReceptiveFieldMap:
    """Affine map from feature cells to input pixels along one axis: ``n = offset + stride i``."""

    offset: float
    stride: float

    def then(self, window: Window) -> "ReceptiveFieldMap":
        """Compose with a further window applied to this map's output."""
        shift = (window.kernel - 1) / 2.0 - window.padding  # centre of output 0 in its input
        return ReceptiveFieldMap(self.offset + self.stride * shift, self.stride * window.stride)

    def cell_of_pixel(self, pixel: float) -> float:
        """Fractional cell index whose receptive-field centre is input pixel ``pixel``."""
        return (pixel - self.offset) / self.stride

    def cell_affine(self, input_steps: int) -> tuple[float, float]:
        """Return ``(a, b)`` with ``cell = a u + b`` for input-crop normalised ``u``.

        Args:
            input_steps: pixels of the input crop along this axis (``S``).
        """
        if input_steps < 1:
            raise ValueError(f"input size must be >= 1, got {input_steps}")
        half = (input_steps - 1) / 2.0  # pixel = (u + 1) * half
        return half / self.stride, (half - self.offset) / self.stride


def backbone_windows() -> list[Window]:
    """The spatial windows on the stem-to-layer4 path of ``InflatedResNet`` (one axis).

    Only the first block of a stage changes the map: later blocks have stride 1 and a centred
    3x3 conv2 (padding 1), and 1x1 convs are the identity on positions. The strided 1x1
    ``downsample`` shortcut samples input ``s j``, the same centre as the strided conv2, which is
    checked here (an even kernel would put the two branches half a pixel apart).
    """
    windows = [Window(STEM_KERNEL[2], STEM_STRIDE[2], STEM_PADDING[2]),
               Window(POOL_KERNEL[2], POOL_STRIDE[2], POOL_PADDING[2])]
    for name, spec in STAGES.items():
        kernel = spec.conv2_kernel[2]
        if kernel % 2 != 1:
            raise ValueError(f"{name}: conv2 kernel {kernel} is even; its centre would not match "
                             "the 1x1 shortcut")
        windows.append(Window(kernel, spec.stride, kernel // 2))  # TimePaddedConv3d pads k // 2
    return windows


def layer4_map() -> ReceptiveFieldMap:
    """Receptive-field centres of the layer4 cells (``Z``): ``n = offset + stride i``."""
    rf = ReceptiveFieldMap(0.0, 1.0)
    for window in backbone_windows():
        rf = rf.then(window)
    return rf


def layer4_size(input_steps: int) -> int:
    """Number of layer4 cells along an axis of ``input_steps`` input pixels."""
    size = input_steps
    for w in backbone_windows():
        size = (size + 2 * w.padding - w.kernel) // w.stride + 1
    return size


__all__ = ["ReceptiveFieldMap", "Window", "backbone_windows", "layer4_map", "layer4_size"]
