"""Small random models, Recognizers and frames shared by the runtime tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from glimpse_ros.config import ModelConfig, RecognizerConfig
from glimpse_ros.model.backbone import InflatedResNet
from glimpse_ros.runtime.recognizer import Recognizer


def randomise_batchnorm(model: torch.nn.Module, affine: bool = True) -> torch.nn.Module:
    """Give every BatchNorm3d non-trivial statistics (and affine parameters); return ``model``.

    Draws from torch's global generator, so results follow the caller's ``torch.manual_seed``.
    """
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 2.0)
            if affine:
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.normal_(0, 0.1)
    return model


def random_backbone(cfg: ModelConfig) -> InflatedResNet:
    """Seed 0, an ``InflatedResNet(cfg)`` in eval mode with non-trivial batch-norm statistics."""
    torch.manual_seed(0)
    return randomise_batchnorm(InflatedResNet(cfg).eval())


def make_recognizer(checkpoint: str | Path, **kw) -> Recognizer:
    """A Recognizer on ``checkpoint`` (torch backend, no smoothing, one thread by default)."""
    kw.setdefault("backend", "torch")
    kw.setdefault("smoothing", 0.0)
    kw.setdefault("num_threads", 1)  # tiny model: one thread is fastest and robust to load
    return Recognizer(RecognizerConfig(**kw), checkpoint)


def random_frames(n: int, seed: int = 0, hw: tuple[int, int] = (24, 32)) -> list[np.ndarray]:
    """``n`` random uint8 RGB frames of size ``hw``."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (*hw, 3), dtype=np.uint8) for _ in range(n)]
