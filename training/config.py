"""Training configuration: frozen dataclasses loaded from YAML plus ``key=value`` overrides.

Example: ``python training/train.py --config config/train/synthetic.yaml optim.epochs=3
model.frames=4``. Override values are parsed as YAML scalars (``3``, ``1e-4``, ``true``,
``[1,1]``).
Unknown keys and wrong types are errors naming the key (glimpse_ros.config_loader.load_dataclass).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from glimpse_ros.config import ModelConfig
from glimpse_ros.config_loader import load_dataclass, to_dict


@dataclass(frozen=True)
class DataConfig:
    """Where the prepared data lives and how it is split.

    ``protocol``: ``cs`` / ``cv`` (NTU RGB+D and synthetic) or ``v3_12`` / ``v2_13`` / ``v1_23``
    (N-UCLA). ``max_*_samples`` > 0 keep a deterministic subset (smoke tests, quick runs).
    """

    dataset: str = "ntu"
    root: str = "data/ntu_prepared"
    protocol: str = "cs"
    labels: str = "config/labels/ntu60.txt"
    val_fraction: float = 0.05
    test_clips: int = 5
    val_clips: int = 1
    num_workers: int = 4
    max_train_samples: int = 0
    max_test_samples: int = 0

    def __post_init__(self) -> None:
        """Validate enumerations."""
        if self.dataset not in ("ntu", "nucla", "synthetic"):
            raise ValueError(f"data.dataset: {self.dataset!r} is not one of ntu, nucla, synthetic")
        if self.test_clips < 1 or self.val_clips < 1:
            raise ValueError("data.test_clips / data.val_clips: must be >= 1")


@dataclass(frozen=True)
class OptimConfig:
    """Adam settings and the training budget (``max_steps`` > 0 stops early)."""

    lr: float = 1e-4
    # Learning rate of the recurrent head in stage 2 (training/optimizer.py); 0 = lr.
    head_lr: float = 0.0
    # Stage 2: epochs at the start in which only the new head learns (the other weights' rate is
    # 0 and the backbone's batch-norm statistics stay), before end-to-end training.
    head_warmup_epochs: int = 0
    weight_decay: float = 0.0
    batch_size: int = 10          # per process; the paper's 40 = 10 x 4 GPUs
    epochs: int = 20
    max_steps: int = 0
    grad_clip: float = 0.0
    lr_decay_epochs: tuple[int, ...] = ()
    lr_decay: float = 0.1

    def __post_init__(self) -> None:
        """Validate the learning rates."""
        if not self.lr > 0:
            raise ValueError(f"optim.lr: must be > 0, got {self.lr}")
        if not self.head_lr >= 0:
            raise ValueError(f"optim.head_lr: must be >= 0 (0 = optim.lr), got {self.head_lr}")
        if self.head_warmup_epochs < 0:
            raise ValueError(f"optim.head_warmup_epochs: must be >= 0, got "
                             f"{self.head_warmup_epochs}")


@dataclass(frozen=True)
class LossConfig:
    """Weights of L = L_D + pose * L_P + glimpse * L_G (the paper sums them unweighted)."""

    pose: float = 1.0
    glimpse: float = 1.0


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs.

    ``stage``: ``global`` (stage 1: global model, L_D + L_P) or ``full`` (stage 2, end to end).
    ``init``: checkpoint to start from (stage-1 result for stage 2, the NTU model for N-UCLA);
    tensors whose shapes differ (e.g. a classifier with another class count) are skipped and
    listed.
    ``pretrained_2d``: torchvision-format 2D ResNet file inflated into the backbone (stage 1);
    ``none`` trains from scratch on purpose (see :func:`check_pretrained_2d`).
    ``device``: ``auto`` (CUDA when available, else CPU with a warning), ``cuda`` or ``cpu``.
    ``model_preset``: ``paper`` (ResNet-50) or ``small``; ``model`` overrides its fields.
    ``freeze_backbone``: stage 2 trains everything but the backbone, whose batch-norm statistics
    stay too (ablation: does fine-tuning end to end destroy the global features?).
    ``freeze_backbone_bn``: train the backbone's weights but keep its batch-norm statistics (the
    running means and variances of ``init``, used in training too): for continuing from a
    trained checkpoint with small per-process batches, never for training from scratch.
    """

    stage: str = "global"
    model_preset: str = "paper"
    model: dict[str, Any] = field(default_factory=dict)
    data: DataConfig = DataConfig()
    optim: OptimConfig = OptimConfig()
    loss: LossConfig = LossConfig()
    init: str = ""
    pretrained_2d: str = ""
    inflate_mode: str = "center"
    out_dir: str = "runs/train"
    seed: int = 0
    amp: bool = True
    threads: int = 0
    log_every: int = 20
    eval_every: int = 1
    progress: bool = True
    freeze_backbone: bool = False
    freeze_backbone_bn: bool = False
    device: str = "auto"

    def __post_init__(self) -> None:
        """Validate enumerations."""
        if self.stage not in ("global", "full"):
            raise ValueError(f"stage: {self.stage!r} is not one of global, full")
        if self.model_preset not in ("paper", "small"):
            raise ValueError(f"model_preset: {self.model_preset!r} is not one of paper, small")
        if self.inflate_mode not in ("center", "mean"):
            raise ValueError(f"inflate_mode: {self.inflate_mode!r} is not one of center, mean")
        if self.device not in ("auto", "cuda", "cpu"):
            raise ValueError(f"device: {self.device!r} is not one of auto, cuda, cpu")

    @property
    def inflate_from(self) -> str:
        """The 2D ResNet file to inflate, ``""`` for none (``pretrained_2d`` empty or ``none``)."""
        return "" if self.pretrained_2d.strip().lower() in ("", "none") else self.pretrained_2d

    def model_config(self, num_classes: int) -> ModelConfig:
        """The :class:`ModelConfig` of this run (``num_classes`` unless ``model`` sets it)."""
        values = {"num_classes": num_classes, **self.model}
        if self.model_preset == "small":
            base = to_dict(ModelConfig.small())
            base.update(values)
            values = base
        return load_dataclass(ModelConfig, values, where="model")


def apply_override(data: dict[str, Any], item: str) -> None:
    """Apply one ``a.b.c=value`` override to nested ``data`` in place."""
    if "=" not in item:
        raise ValueError(f"override {item!r}: expected key=value")
    key, raw = item.split("=", 1)
    parts = key.strip().split(".")
    node = data
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ValueError(f"override {item!r}: {p} is not a section")
    value = yaml.safe_load(raw) if raw.strip() else ""
    if isinstance(value, str):
        # YAML 1.1 reads "3e-4" (no dot) as a string; accept it as the number users mean.
        try:
            value = float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            pass
    node[parts[-1]] = value


def load_train_config(path: str | Path | None, overrides: list[str] = ()) -> TrainConfig:
    """Load a YAML file (optional) and apply ``key=value`` overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as err:
            raise ValueError(f"{path}: cannot read config: {err}") from err
        if not isinstance(data, dict):
            raise ValueError(f"{path}: top level must be a mapping")
    for item in overrides:
        apply_override(data, item)
    return load_dataclass(TrainConfig, data, where="")


def read_labels(path: str | Path) -> list[str]:
    """One class name per non-empty line."""
    try:
        labels = [ln.strip() for ln in Path(path).read_text().splitlines() if ln.strip()]
    except OSError as err:
        raise ValueError(f"{path}: cannot read labels: {err}") from err
    if not labels:
        raise ValueError(f"{path}: no labels")
    return labels
