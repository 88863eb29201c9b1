"""Frame preprocessing shared by training and the runtime (DESIGN §3, §5).

The paper rescales every video to 256×256 (aspect ratio not kept) and crops 224×224; the network
input is RGB normalised with the ImageNet mean and standard deviation. Training and inference call
the same functions so that a deployed model sees exactly what it was trained on.
"""

from __future__ import annotations

import math

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


# normalize() of every uint8 value per channel, computed by normalize() itself so that the
# lookup gives the same float32 bits: row c holds channel c's 256 values, shape (3, 1, 256).
_NORMALIZE_LUT = normalize(np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 3, axis=2))


def _exact_span(src: int, resize: int, o: int, crop: int) -> tuple[int, int] | None:
    """Source span ``[a, b)`` whose INTER_AREA resize to ``crop`` equals cells o..o+crop-1.

    The full resize maps output cell ``i`` to source ``[i*s, (i+1)*s)`` with ``s = src/resize``.
    Resizing only ``[o*s, (o+crop)*s)`` to ``crop`` cells gives the same cells, weights and
    summation order (hence the same uint8 result) when both ends are whole source pixels and
    ``s`` is exact in binary floating point (OpenCV computes ``i*s`` in double): the scale's
    reduced denominator is then a power of two. Otherwise None (resize the whole axis).
    """
    start, stop = o * src, (o + crop) * src
    if start % resize or stop % resize:
        return None
    q = resize // math.gcd(src, resize)
    if q & (q - 1):
        return None
    return start // resize, stop // resize


def _crop_resized(rgb: np.ndarray, resize: int, crop: int) -> np.ndarray:
    """``resize_square(rgb, resize)`` centre-cropped to ``crop``, resizing as little as possible.

    Shrinking (INTER_AREA) on both axes, each axis whose crop maps to an exact source span
    (:func:`_exact_span`) is cut to that span before resizing, so only the pixels under the
    crop are read: 640x480 -> 256 -> 224 resizes 560x420 source pixels straight to 224x224.
    Other axes, and enlarging (bilinear, whose edge cells read neighbours outside any span), use
    the full resize and crop after it. The result equals the full path exactly (tested).
    """
    h, w = rgb.shape[:2]
    o = crop_offset(resize, crop)
    if min(h, w) < resize:  # some axis enlarges: bilinear (cv2's INTER_AREA too, then)
        return resize_square(rgb, resize)[o:o + crop, o:o + crop]
    ys, xs = _exact_span(h, resize, o, crop), _exact_span(w, resize, o, crop)
    (y_a, y_b), (x_a, x_b) = ys or (0, h), xs or (0, w)
    interp = cv2.INTER_AREA if resize < max(h, w) else cv2.INTER_LINEAR  # as resize_square
    square = cv2.resize(rgb[y_a:y_b, x_a:x_b], (crop if xs else resize, crop if ys else resize),
                        interpolation=interp)  # (crop or resize, crop or resize, 3)
    y0, x0 = (0 if ys else o), (0 if xs else o)
    return square[y0:y0 + crop, x0:x0 + crop]


def preprocess_frame(rgb: np.ndarray, resize: int = 256, crop: int = 224,
                     out: np.ndarray | None = None) -> np.ndarray:
    """Resize, centre-crop and normalise one frame: (H, W, 3) uint8 -> (3, crop, crop) float32.

    Equal to ``normalize(resize_square(rgb, resize)[o:o + crop, o:o + crop])`` (the training
    computation) bit for bit, in two passes over the pixels: one resize of only the source region
    under the crop where that is exact (:func:`_crop_resized`), then one lookup per channel of
    the normalised value of each uint8 (:data:`_NORMALIZE_LUT`) written straight into the
    channel planes of the CHW result.

    Args:
        rgb: (H, W, 3) uint8 RGB frame.
        resize: side of the square the frame is resized to.
        crop: side of the centre crop.
        out: optional C-contiguous (3, crop, crop) float32 array to write into (returned).

    Raises:
        ValueError: bad frame (see :func:`check_frame`), crop > resize, or a wrong ``out``.
    """
    check_frame(rgb)
    if out is None:
        out = np.empty((3, crop, crop), dtype=np.float32)
    elif (out.shape != (3, crop, crop) or out.dtype != np.float32
          or not out.flags.c_contiguous):
        raise ValueError(f"out must be a C-contiguous (3, {crop}, {crop}) float32 array, got "
                         f"{out.dtype} {out.shape}")
    square = _crop_resized(rgb, resize, crop)  # (crop, crop, 3) uint8
    for c, plane in enumerate(cv2.split(square)):  # (crop, crop) uint8 each
        cv2.LUT(plane, _NORMALIZE_LUT[c], dst=out[c])
    return out


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
