"""Frame preprocessing shared by training and the runtime (DESIGN §3, §5).

The paper rescales every video to 256×256 (aspect ratio not kept) and crops 224×224; the network
input is RGB normalised with the ImageNet mean and standard deviation. Training and inference call
the same functions so that a deployed model sees exactly what it was trained on.
"""

from __future__ import annotations

import cv2
import numpy as np

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def check_frame(frame: np.ndarray) -> None:
    """Raise ``ValueError`` unless ``frame`` is a non-empty (H, W, 3) uint8 RGB image."""
    if not isinstance(frame, np.ndarray):
        raise ValueError(f"frame must be a numpy array, got {type(frame).__name__}")
    if frame.ndim != 3:
        raise ValueError(f"frame must have rank 3 (H, W, 3), got shape {frame.shape}")
    if frame.shape[2] != 3:
        raise ValueError(f"frame must have 3 channels (RGB), got {frame.shape[2]}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"frame has zero size: {frame.shape}")
    if frame.dtype != np.uint8:
        raise ValueError(f"frame dtype must be uint8, got {frame.dtype}")


def resize_square(rgb: np.ndarray, size: int) -> np.ndarray:
    """Resize (H, W, 3) uint8 to (size, size, 3); aspect ratio not kept, as in the paper."""
    check_frame(rgb)
    h, w = rgb.shape[:2]
    # INTER_AREA when shrinking (anti-aliased), bilinear when enlarging.
    interp = cv2.INTER_AREA if size < max(h, w) else cv2.INTER_LINEAR
    return cv2.resize(rgb, (size, size), interpolation=interp)


def crop_offset(resize: int, crop: int) -> int:
    """Offset of the centre crop inside the resized square."""
    if crop > resize:
        raise ValueError(f"crop {crop} larger than resize {resize}")
    return (resize - crop) // 2


def normalize(rgb: np.ndarray) -> np.ndarray:
    """Convert uint8 (..., H, W, 3) RGB to float32 (..., 3, H, W) with ImageNet normalisation."""
    x = rgb.astype(np.float32) * (1.0 / 255.0)
    x = (x - IMAGENET_MEAN) / IMAGENET_STD  # (..., H, W, 3)
    return np.ascontiguousarray(np.moveaxis(x, -1, -3))  # (..., 3, H, W)


def preprocess_frame(rgb: np.ndarray, resize: int = 256, crop: int = 224) -> np.ndarray:
    """Resize, centre-crop and normalise one frame: (H, W, 3) uint8 -> (3, crop, crop) float32."""
    square = resize_square(rgb, resize)
    o = crop_offset(resize, crop)
    return normalize(square[o:o + crop, o:o + crop])


def glimpse_box_pixels(glimpse: np.ndarray, image_hw: tuple[int, int], resize: int = 256,
                       crop: int = 224) -> np.ndarray:
    """Map glimpses from crop-normalised coordinates to source-image pixel boxes.

    Args:
        glimpse: (..., 4) ``[x, y, sx, sy]``; centre in [-1, 1] with the affine_grid
            align_corners=True convention (-1 and +1 are the centres of the first and last pixel of
            the crop), half-extents in the same units.
        image_hw: (H, W) of the source image.
        resize: side of the square the source was resized to.
        crop: side of the centre crop fed to the network.

    Returns:
        (..., 4) float boxes ``[x0, y0, x1, y1]`` in source pixels, clipped to the image.
    """
    g = np.asarray(glimpse, dtype=np.float64)
    if g.shape[-1] != 4:
        raise ValueError(f"glimpse last dim must be 4, got shape {g.shape}")
    h, w = image_hw
    o = crop_offset(resize, crop)
    half = (crop - 1) / 2.0

    def to_src(u: np.ndarray, scale: float) -> np.ndarray:
        crop_px = (u + 1.0) * half + o  # pixel-centre coordinate in the resized square
        return (crop_px + 0.5) * scale - 0.5  # pixel-centre coordinate in the source image

    sx_img, sy_img = w / resize, h / resize
    x0 = to_src(g[..., 0] - g[..., 2], sx_img)
    x1 = to_src(g[..., 0] + g[..., 2], sx_img)
    y0 = to_src(g[..., 1] - g[..., 3], sy_img)
    y1 = to_src(g[..., 1] + g[..., 3], sy_img)
    boxes = np.stack([x0, y0, x1, y1], axis=-1)  # (..., 4)
    boxes[..., 0::2] = np.clip(boxes[..., 0::2], 0.0, w - 1.0)
    boxes[..., 1::2] = np.clip(boxes[..., 1::2], 0.0, h - 1.0)
    return boxes
