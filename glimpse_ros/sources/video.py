"""RGB frames of a video file or of the (sorted) images of a folder."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from glimpse_ros.sources.frame import Frame

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff")
DEFAULT_FOLDER_FPS = 30.0


class FrameSource:
    """RGB frames of a video file or of the (sorted) images of a folder, with their frame rate."""

    def __init__(self, path: str | Path, size: tuple[int, int] | None = None) -> None:
        """Open ``path``; ``size`` = (width, height) resizes every frame.

        Raises:
            ValueError: the path does not exist, holds no images, or OpenCV cannot read the video.
        """
        self.path = Path(path).expanduser()
        self.size = size
        self.count: int | None = None  # number of frames when known
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
            ok = cap.isOpened() and cap.read()[0]
            fps = cap.get(cv2.CAP_PROP_FPS)
            count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
            cap.release()
            if not ok:
                raise ValueError(f"{self.path}: OpenCV cannot read this video")
            self.fps = float(fps) if fps and math.isfinite(fps) and fps > 0 else 30.0
            self.count = int(count) if count and math.isfinite(count) and count > 0 else None
        else:
            raise ValueError(f"{self.path}: no such file or folder")

    def frames(self) -> Iterator[np.ndarray]:
        """Yield (H, W, 3) uint8 RGB frames once through the source."""
        if self.files:
            for p in self.files:
                bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
                if bgr is not None:
                    yield self._finish(bgr)
            return
        cap = cv2.VideoCapture(str(self.path))
        try:
            while True:
                ok, bgr = cap.read()
                if not ok:
                    return
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
