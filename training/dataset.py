"""Clip datasets over the prepared format: segment sampling, crops, joint targets and masks.

Training draws one 8-frame sub-sequence per video by segment sampling (the video is cut into T
equal segments, one random frame from each) and a random ``crop``×``crop`` window of the
``resize`` square; testing takes ``clips`` (5) evenly spaced sub-sequences with the centre crop
(the paper also crops at random at test time; a centre crop makes evaluation deterministic and
matches the runtime).

Joints follow the model contract: (x, y) in [-1, 1] of the network crop, align_corners=True
convention (-1 / +1 = centres of the first / last crop pixel), i.e. the inverse of
:func:`glimpse_ros.preprocess.glimpse_box_pixels`. Joints outside the crop, of absent bodies or of
frames without skeleton are masked.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from glimpse_ros.preprocess import normalize, resize_square
from training.prepared import SampleInfo, read_frames

log = logging.getLogger(__name__)


def segment_indices(num_frames: int, frames: int, rng: np.random.Generator | None = None,
                    offset: float = 0.5) -> list[int]:
    """Pick ``frames`` indices, one per equal segment of ``[0, num_frames)``.

    Args:
        num_frames: frames in the video (> 0); shorter videos repeat frames.
        frames: sub-sequence length T.
        rng: draw a uniform position inside each segment (training) when given.
        offset: fixed relative position inside each segment (test clips) when ``rng`` is None.
    """
    if num_frames <= 0:
        raise ValueError(f"video has no frames ({num_frames})")
    seg = num_frames / frames
    pos = rng.uniform(0.0, 1.0, frames) if rng is not None else np.full(frames, offset)
    idx = np.floor((np.arange(frames) + pos) * seg).astype(int)
    return [int(i) for i in np.clip(idx, 0, num_frames - 1)]


def joints_to_crop(joints: np.ndarray, present: np.ndarray, src_wh: tuple[int, int], resize: int,
                   crop: int, offset_xy: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Map source-pixel joints to crop-normalised coordinates.

    Args:
        joints: (..., 2, J, 2) source pixel (x, y).
        present: (..., 2) body flags.
        src_wh: source (width, height).
        resize: side of the square the frame was resized to.
        crop: crop side.
        offset_xy: (x0, y0) of the crop inside the square.

    Returns:
        (..., 2, J, 2) float32 in [-1, 1] where valid, and (..., 2, J) bool mask.
    """
    w, h = src_wh
    half = (crop - 1) / 2.0
    out = np.empty_like(joints, dtype=np.float32)
    for axis, (size, off) in enumerate(((w, offset_xy[0]), (h, offset_xy[1]))):
        sq = (joints[..., axis] + 0.5) * (resize / size) - 0.5     # pixel centre in the square
        out[..., axis] = (sq - off) / half - 1.0
    finite = np.isfinite(out).all(-1)
    # Kinect writes (0, 0) for untracked joints.
    tracked = np.abs(joints).sum(-1) > 0
    inside = (np.abs(out) <= 1.0).all(-1)
    mask = present[..., None] & finite & tracked & inside                     # (..., 2, J)
    out[~mask] = 0.0
    return out, mask


class ClipDataset(Dataset):
    """Clips of a prepared data set.

    Each item is a dict with ``video`` (3, T, crop, crop) float32 — or (clips, 3, T, crop, crop)
    when ``clips`` > 1 —, ``label`` int, ``joints`` (T, 2, J, 2) / (clips, T, 2, J, 2), ``mask``
    (T, 2, J) / (clips, T, 2, J) bool and ``index``.
    """

    def __init__(self, root: str | Path, samples: list[SampleInfo], frames: int = 8,
                 resize: int = 256, crop: int = 224, train: bool = True, clips: int = 1,
                 num_joints: int = 25, seed: int = 0):
        """Build the dataset and report samples whose files are missing.

        Raises:
            ValueError: when no sample is usable or sizes are inconsistent.
        """
        if crop > resize:
            raise ValueError(f"crop {crop} larger than resize {resize}")
        self.root = Path(root)
        self.frames, self.resize, self.crop = frames, resize, crop
        self.train, self.clips, self.num_joints, self.seed = train, clips, num_joints, seed
        self.epoch = 0
        self.missing: list[str] = []
        self.samples: list[SampleInfo] = []
        for s in samples:
            if (self.root / "videos" / f"{s.name}.avi").exists():
                self.samples.append(s)
            else:
                self.missing.append(s.name)
        if self.missing:
            log.warning("%s: %d of %d videos missing (first: %s); they are left out", self.root,
                        len(self.missing), len(samples), ", ".join(self.missing[:5]))
        if not self.samples:
            raise ValueError(f"{self.root}: no usable sample out of {len(samples)}")

    def set_epoch(self, epoch: int) -> None:
        """Change the random stream of training sub-sequences and crops."""
        self.epoch = epoch

    def __len__(self) -> int:
        """Number of usable samples."""
        return len(self.samples)

    def _load_joints(self, s: SampleInfo) -> tuple[np.ndarray, np.ndarray]:
        """(T, 2, J, 2) source joints and (T, 2) presence; zeros when there is no skeleton."""
        if s.has_joints:
            with np.load(self.root / "joints" / f"{s.name}.npz") as z:
                return z["joints"][:, :, :self.num_joints], z["present"]
        return (np.zeros((0, 2, self.num_joints, 2), np.float32), np.zeros((0, 2), bool))

    def _clip(self, s: SampleInfo, idx: list[int], offset: tuple[int, int],
              joints: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, ...]:
        """Decode, crop and normalise one sub-sequence and its joints."""
        order = sorted(set(idx))
        frames, _ = read_frames(self.root / "videos" / f"{s.name}.avi", order)
        by_idx = dict(zip(order, frames))
        x0, y0 = offset
        c = self.crop
        clip = np.stack([resize_square(by_idx[i], self.resize)[y0:y0 + c, x0:x0 + c]
                         for i in idx])                                        # (T, c, c, 3)
        video = np.moveaxis(normalize(clip), 0, 1)                             # (3, T, c, c)
        j = np.zeros((len(idx), 2, self.num_joints, 2), np.float32)
        p = np.zeros((len(idx), 2), bool)
        for k, i in enumerate(idx):
            if i < len(joints):     # skeleton streams can be a few frames shorter than the video
                j[k], p[k] = joints[i], present[i]
        jn, mask = joints_to_crop(j, p, (s.width, s.height), self.resize, c, offset)
        return video, jn, mask

    def __getitem__(self, i: int) -> dict:
        """Load item ``i`` (see the class docstring)."""
        s = self.samples[i]
        joints, present = self._load_joints(s)
        if self.train:
            rng = np.random.default_rng([self.seed, self.epoch, i])
            idx = segment_indices(s.frames, self.frames, rng)
            m = self.resize - self.crop
            offset = (int(rng.integers(0, m + 1)), int(rng.integers(0, m + 1)))
            video, jn, mask = self._clip(s, idx, offset, joints, present)
        else:
            o = (self.resize - self.crop) // 2
            parts = [self._clip(s, segment_indices(s.frames, self.frames,
                                                   offset=(k + 0.5) / self.clips),
                                (o, o), joints, present) for k in range(self.clips)]
            video, jn, mask = (np.stack(p) for p in zip(*parts))
            if self.clips == 1:
                video, jn, mask = video[0], jn[0], mask[0]
        return dict(video=torch.from_numpy(video), label=s.label, joints=torch.from_numpy(jn),
                    mask=torch.from_numpy(mask), index=i)
