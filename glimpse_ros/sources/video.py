"""RGB frames of a video file or of the (sorted) images of a folder, within a pixel bound.

The bound is the node's ``max_frame_pixels`` (default
:data:`~glimpse_ros.sources.image_decoding.DEFAULT_MAX_PIXELS`, 4096x4096): a video whose frames
are larger is refused when it is opened; an image of a folder that is larger, or that cannot be
decoded, is skipped with a warning and counted in :attr:`FrameSource.rejections`.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from glimpse_ros.sources.frame import Frame
from glimpse_ros.sources.image_decoding import DEFAULT_MAX_PIXELS, ImageConversionError
from glimpse_ros.sources.image_file import read_image_file
from glimpse_ros.sources.rejections import Rejections

LOG = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff")
DEFAULT_FOLDER_FPS = 30.0


class FrameSource:
    """RGB frames of a video file or of the (sorted) images of a folder, with their frame rate."""

    def __init__(self, path: str | Path, size: tuple[int, int] | None = None,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        """Open ``path``; ``size`` = (width, height) resizes every frame.

        Args:
            path: video file or folder of images.
            size: (width, height) to resize every frame to; None keeps the source's size.
            max_pixels: frames over this many pixels are refused (a video) or skipped (an image).

        Raises:
            ValueError: the path does not exist, holds no images, OpenCV cannot read the video,
                or the video's frames are over ``max_pixels``.
        """
        self.path = Path(path).expanduser()
        self.size, self.max_pixels = size, max_pixels
        self.count: int | None = None  # number of frames when known
        self.rejections = Rejections(LOG)
        if self.path.is_dir():
            self.files = sorted(p for p in self.path.iterdir()
                                if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self.files:
                raise ValueError(f"{self.path}: folder holds no images "
                                 f"({', '.join(IMAGE_SUFFIXES)})")
            self.fps = DEFAULT_FOLDER_FPS
            self.count = len(self.files)
        elif self.path.is_file():
            self.files = []
            cap = cv2.VideoCapture(str(self.path))
            width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
            height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
            if cap.isOpened() and width * height > max_pixels:  # before decoding any frame
                cap.release()
                raise ValueError(f"{self.path}: video frames are {width}x{height} = "
                                 f"{width * height} pixels, over the limit of {max_pixels} "
                                 f"(max_frame_pixels)")
            ok = cap.isOpened() and cap.read()[0]
            fps = cap.get(cv2.CAP_PROP_FPS)
            count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
            cap.release()
            if not ok:
                raise ValueError(f"{self.path}: OpenCV cannot read this video")
            self.fps = float(fps) if fps and math.isfinite(fps) and 0 < fps <= 1000 else 30.0
            self.count = int(count) if count and math.isfinite(count) and count > 0 else None
        else:
            raise ValueError(f"{self.path}: no such file or folder")

    @property
    def rejected(self) -> int:
        """Images skipped so far (unreadable or over the pixel bound)."""
        return self.rejections.total

    def frames(self) -> Iterator[np.ndarray]:
        """Yield (H, W, 3) uint8 RGB frames once through the source."""
        if self.files:
            for p in self.files:
                try:
                    bgr = read_image_file(p, self.max_pixels)
                except ImageConversionError as err:
                    self.rejections.add(err.reason, str(p), str(err))
                    continue
                except OSError as err:  # vanished or unreadable file
                    self.rejections.add("unreadable", str(p), str(err))
                    continue
                yield self._finish(bgr)
            return
        cap = cv2.VideoCapture(str(self.path))
        try:
            while True:
                ok, bgr = cap.read()
                if not ok:
                    return
                if bgr.shape[0] * bgr.shape[1] > self.max_pixels:  # a stream changed size
                    self.rejections.add("too_large", f"{self.path} frame",
                                        f"{bgr.shape[1]}x{bgr.shape[0]} is over the limit of "
                                        f"{self.max_pixels} pixels")
                    continue
                yield self._finish(bgr)
        finally:
            cap.release()

    def items(self) -> Iterator[Frame]:
        """Yield :class:`Frame` objects (no stamp: a file has no clock)."""
        for i, rgb in enumerate(self.frames()):
            yield Frame(rgb=rgb, index=i)

    def _finish(self, bgr: np.ndarray) -> np.ndarray:
        if self.size is not None and (bgr.shape[1], bgr.shape[0]) != self.size:
            bgr = cv2.resize(bgr, self.size, interpolation=cv2.INTER_LINEAR)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
