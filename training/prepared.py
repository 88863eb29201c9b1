"""The prepared on-disk format shared by NTU RGB+D, N-UCLA and synthetic data.

``prepare`` commands decode each source video once, rescale every frame to ``size``×``size`` with
:func:`glimpse_ros.preprocess.resize_square` (the paper's 256×256, aspect not kept) and store:

- ``videos/<name>.avi``: MJPG video of the rescaled frames;
- ``joints/<name>.npz``: ``joints`` (T, 2, J, 2) float32 in SOURCE pixels and ``present`` (T, 2);
- ``index.json``: per sample name, label, frame count, source width/height, subject,
  camera/view and whether a skeleton exists, plus the list of files that could not be used and why.

Corrupt or missing inputs are never dropped silently: they are listed under ``errors`` in the
index, counted in the command's summary, and reported again when a dataset is built from the index.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

from glimpse_ros.preprocess import resize_square

INDEX = "index.json"


@dataclass
class SampleInfo:
    """One usable sample of a prepared data set."""

    name: str
    label: int
    frames: int
    width: int
    height: int
    subject: int
    camera: int
    has_joints: bool


@dataclass
class PreparedIndex:
    """Contents of ``index.json``."""

    dataset: str
    size: int
    labels: list[str]
    samples: list[SampleInfo] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)

    def save(self, root: Path) -> None:
        """Write ``root/index.json``."""
        data = asdict(self)
        (root / INDEX).write_text(json.dumps(data, indent=1))

    @classmethod
    def load(cls, root: str | Path) -> "PreparedIndex":
        """Read ``root/index.json``; a missing or malformed index raises ``ValueError``."""
        path = Path(root) / INDEX
        try:
            data = json.loads(path.read_text())
            samples = [SampleInfo(**s) for s in data.pop("samples")]
            return cls(samples=samples, **data)
        except (OSError, ValueError, TypeError, KeyError) as err:
            raise ValueError(f"{path}: not a prepared data set index ({err}); run the prepare "
                             f"command first") from err


def read_frames(path: str | Path, wanted: list[int] | None = None) -> tuple[list[np.ndarray], int]:
    """Decode RGB frames of a video.

    Args:
        path: video file.
        wanted: sorted frame indices to keep (all when None); decoding stops after the last one.

    Returns:
        (frames kept in the order of ``wanted``, number of frames decoded).

    Raises:
        ValueError: if the file cannot be opened or yields no frame.
    """
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"{path}: cannot open video")
    keep: dict[int, np.ndarray] = {}
    want = None if wanted is None else set(wanted)
    last = None if wanted is None else max(wanted)
    n = 0
    try:
        while last is None or n <= last:
            ok, bgr = cap.read()
            if not ok:
                break
            if want is None or n in want:
                keep[n] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            n += 1
    finally:
        cap.release()
    if n == 0:
        raise ValueError(f"{path}: no decodable frame")
    order = sorted(keep) if wanted is None else list(wanted)
    # Short reads (fewer frames than the index says) repeat the last decoded frame.
    last_frame = keep[max(keep)] if keep else None
    if last_frame is None:
        raise ValueError(f"{path}: decoded {n} frames, none of the requested {wanted}")
    return [keep.get(i, last_frame) for i in order], n


def write_rescaled_frames(frames: Iterable[np.ndarray], dst: Path, size: int
                          ) -> tuple[int, int, int]:
    """Rescale RGB ``frames`` to size×size and write them as MJPG ``dst``.

    ``frames`` may be a generator: frames are rescaled one at a time, so a full-resolution video
    is never held in memory.

    Returns:
        (frame count, source width, source height).

    Raises:
        ValueError: when there is no frame or the writer cannot be opened.
    """
    dst.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (size, size))
    if not writer.isOpened():
        raise ValueError(f"{dst}: cannot open an MJPG writer")
    n, w, h = 0, 0, 0
    try:
        for f in frames:
            if n == 0:
                h, w = f.shape[:2]
            writer.write(cv2.cvtColor(resize_square(f, size), cv2.COLOR_RGB2BGR))
            n += 1
    finally:
        writer.release()
    if n == 0:
        raise ValueError(f"{dst}: no frame to write")
    return n, w, h


def _decode(src: Path) -> Iterator[np.ndarray]:
    """Yield the RGB frames of ``src``; ``ValueError`` when it cannot be opened or is empty."""
    cap = cv2.VideoCapture(str(src))
    if not cap.isOpened():
        raise ValueError(f"{src}: cannot open video")
    n = 0
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            n += 1
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()
    if n == 0:
        raise ValueError(f"{src}: no decodable frame")


def write_rescaled(src: Path, dst: Path, size: int) -> tuple[int, int, int]:
    """Decode ``src`` frame by frame and write it rescaled (see :func:`write_rescaled_frames`)."""
    return write_rescaled_frames(_decode(src), dst, size)


def write_joints(dst: Path, joints: np.ndarray, present: np.ndarray) -> None:
    """Store (T, 2, J, 2) source-pixel joints and (T, 2) presence flags."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    np.savez(dst, joints=joints.astype(np.float32), present=present.astype(bool))
