"""Train / validation / test selection for every data set and protocol (DESIGN §5)."""

from __future__ import annotations

import numpy as np

from training import nucla
from training.config import DataConfig
from training.ntu.splits import is_train_ids, validation_split
from training.prepared import SampleInfo


def is_train_sample(s: SampleInfo, dataset: str, protocol: str) -> bool:
    """True when ``s`` is on the training side of ``protocol``.

    NTU RGB+D and synthetic data: ``cs`` (subjects) or ``cv`` (cameras 2, 3 train). N-UCLA:
    ``v3_12`` / ``v2_13`` / ``v1_23`` (``camera`` holds the view).
    """
    if dataset in ("ntu", "synthetic"):
        return is_train_ids(s.subject, s.camera, protocol)
    return nucla.is_train(s.camera, protocol)


def _subset(items: list[SampleInfo], limit: int, seed: int) -> list[SampleInfo]:
    """A deterministic subset of at most ``limit`` items (all when ``limit`` <= 0)."""
    if limit <= 0 or limit >= len(items):
        return items
    keep = np.sort(np.random.default_rng(seed).permutation(len(items))[:limit])
    return [items[i] for i in keep]


def split_samples(samples: list[SampleInfo], data: DataConfig, seed: int
                  ) -> tuple[list[SampleInfo], list[SampleInfo], list[SampleInfo]]:
    """(train, validation, test) sample lists; validation = ``val_fraction`` of the train side."""
    train = [s for s in samples if is_train_sample(s, data.dataset, data.protocol)]
    test = [s for s in samples if not is_train_sample(s, data.dataset, data.protocol)]
    if not train or not test:
        raise ValueError(f"{data.root}: protocol {data.protocol} leaves {len(train)} training "
                         f"and {len(test)} test samples")
    train = _subset(train, data.max_train_samples, seed)
    test = _subset(test, data.max_test_samples, seed + 1)
    tr_idx, val_idx = validation_split(list(range(len(train))), data.val_fraction, seed)
    return [train[i] for i in tr_idx], [train[i] for i in val_idx], test
