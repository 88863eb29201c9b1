"""Builders of small on-disk data sets in the exact source formats (shared by training tests)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def write_nucla_tree(root: Path, samples: tuple[tuple[int, int], ...] = ((1, 1), (12, 2)),
                     views: tuple[int, ...] = (1, 2, 3), frames: int = 5,
                     size: tuple[int, int] = (64, 48), seed: int = 0) -> Path:
    """Write N-UCLA's distributed layout: ``view_<v>/a<aa>_s<ss>_e00/frame_<k>_tc_<t>_rgb.jpg``.

    Args:
        root: the ``multiview_action`` folder to create.
        samples: (action id, subject) pairs written for every view.
        views: camera views.
        frames: frames per sample (random images, empty skeleton files beside them).
        size: (width, height) of the frames.
        seed: random seed of the pixels.

    Returns:
        ``root``.
    """
    rng = np.random.default_rng(seed)
    width, height = size
    for view in views:
        for action, subject in samples:
            d = root / f"view_{view}" / f"a{action:02d}_s{subject:02d}_e00"
            d.mkdir(parents=True)
            for k in range(frames):
                img = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
                cv2.imwrite(str(d / f"frame_{k}_tc_{1000 + 33 * k}_rgb.jpg"), img)
                (d / f"frame_{k}_tc_{1000 + 33 * k}_skeletons.txt").write_text("")
    return root
