"""NTU RGB+D 60 evaluation protocols (DESIGN §5) and the 5 % validation split."""

from __future__ import annotations

import numpy as np

from training.ntu.names import SampleName

# Cross-subject training performers (Shahroudy et al. 2016); all others (incl. 40) are test.
CS_TRAIN_SUBJECTS = frozenset((1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34,
                               35, 38))
# Cross-view: cameras 2 and 3 train, camera 1 test.
CV_TRAIN_CAMERAS = frozenset((2, 3))
PROTOCOLS = ("cs", "cv")


def is_train_ids(subject: int, camera: int, protocol: str) -> bool:
    """True when a sample of ``subject`` seen by ``camera`` is on the training side."""
    if protocol == "cs":
        return subject in CS_TRAIN_SUBJECTS
    if protocol == "cv":
        return camera in CV_TRAIN_CAMERAS
    raise ValueError(f"unknown NTU protocol {protocol!r} (known: {', '.join(PROTOCOLS)})")


def is_train(name: SampleName, protocol: str) -> bool:
    """True when ``name`` belongs to the training side of ``protocol`` ("cs" or "cv")."""
    return is_train_ids(name.subject, name.camera, protocol)


def split_names(names: list[SampleName], protocol: str) -> tuple[list[int], list[int]]:
    """Indices of the training and test samples of ``names`` under ``protocol``."""
    train = [i for i, n in enumerate(names) if is_train(n, protocol)]
    test = [i for i, n in enumerate(names) if not is_train(n, protocol)]
    return train, test


def validation_split(indices: list[int], fraction: float = 0.05, seed: int = 0
                     ) -> tuple[list[int], list[int]]:
    """Hold out ``fraction`` of ``indices`` (at least one) for validation, deterministically.

    Returns:
        (train, val) index lists, each sorted.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
    if len(indices) < 2:
        raise ValueError(f"need at least 2 samples to split, got {len(indices)}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(indices))
    n_val = max(1, int(round(fraction * len(indices))))
    val = sorted(indices[i] for i in order[:n_val])
    train = sorted(indices[i] for i in order[n_val:])
    return train, val
