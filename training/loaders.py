"""Data sets, loaders and logging shared by ``train.py`` and ``evaluate.py``.

Kept apart from both so that neither imports the other.
"""

from __future__ import annotations

import logging

import torch
from torch.utils.data import DataLoader, DistributedSampler

from glimpse_ros.config import ModelConfig
from training import distributed as dist_utils
from training.config import TrainConfig
from training.dataset import ClipDataset
from training.splits import split_samples

log = logging.getLogger("training")


def setup_logging() -> None:
    """INFO logging on rank 0, warnings only elsewhere."""
    level = logging.INFO if dist_utils.is_main() else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def build_datasets(cfg: TrainConfig, mcfg: ModelConfig) -> dict[str, ClipDataset]:
    """Train / validation / test datasets of ``cfg.data`` (see :mod:`training.splits`)."""
    from training.prepared import PreparedIndex

    index = PreparedIndex.load(cfg.data.root)
    if index.errors:
        log.warning("%s: %d source files could not be prepared and are not used (listed under "
                    "'errors' in index.json)", cfg.data.root, len(index.errors))
    no_pose = sum(not s.has_joints for s in index.samples)
    log.info("%s: %d samples, %d without skeleton (pose losses masked)", cfg.data.root,
             len(index.samples), no_pose)
    if index.size < mcfg.resize_size:
        raise ValueError(f"{cfg.data.root}: prepared at {index.size} px, model needs "
                         f"resize_size {mcfg.resize_size}")
    train, val, test = split_samples(index.samples, cfg.data, cfg.seed)
    common = dict(frames=mcfg.frames, resize=mcfg.resize_size, crop=mcfg.crop_size,
                  num_joints=mcfg.num_joints, seed=cfg.seed)
    return dict(
        train=ClipDataset(cfg.data.root, train, train=True, **common),
        val=ClipDataset(cfg.data.root, val, train=False, clips=cfg.data.val_clips, **common),
        test=ClipDataset(cfg.data.root, test, train=False, clips=cfg.data.test_clips, **common))


def make_loader(ds: ClipDataset, cfg: TrainConfig, train: bool) -> DataLoader:
    """Build a DataLoader with a DistributedSampler under torchrun."""
    sampler = None
    if torch.distributed.is_initialized():
        sampler = DistributedSampler(ds, shuffle=train, seed=cfg.seed, drop_last=train)
    gen = torch.Generator().manual_seed(cfg.seed)
    # Evaluation items hold ds.clips clips each: keep about batch_size clips per forward.
    batch = cfg.optim.batch_size if train else max(1, cfg.optim.batch_size // ds.clips)
    return DataLoader(ds, batch_size=batch, shuffle=train and sampler is None, sampler=sampler,
                      num_workers=cfg.data.num_workers, drop_last=train, generator=gen,
                      pin_memory=torch.cuda.is_available(),
                      # Training workers are restarted every epoch: persistent ones would keep
                      # the dataset copy of the first epoch, so set_epoch would never reach them
                      # and every epoch would draw the same sub-sequences and crops.
                      persistent_workers=cfg.data.num_workers > 0 and not train)
