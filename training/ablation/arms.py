"""The ablation arms (paper Tables 3-4) and the training runs that produce them.

Every seed trains stage 1 (the global model, L_D + L_P) once; each arm then continues from that
stage-1 checkpoint for the same number of epochs, with the same data, learning rates and clipping
(the recurrent head, new in stage 2, learns at ``--head-lr``, the rest at ``--lr``, after
``--head-warmup`` epochs of the head alone, ``training/optimizer.py``; with ``--keep-bn`` the
backbone's batch-norm statistics stay those of stage 1, ``freeze_backbone_bn``):

- ``global``: the global model alone, stage 1 continued (L_D + L_P);
- ``full``: Glimpse Clouds end to end (L_D + L_P + L_G), glimpses placed by the map locator
  (``model.glimpse_locator: map``, ``glimpse_ros/model/map_locator.py``);
- ``context``: the full model with the paper's location head, eq. 3 on ``[h_g, c_t]`` only
  (``model.glimpse_locator=context``);
- ``no_lg``: the full model without the glimpse loss (``loss.glimpse=0``);
- ``random``: the full model with uniform random glimpse locations (``model.glimpse_locations``);
- ``c1``: the full model with one worker (``model.num_workers=1``);
- ``oracle``: the full model reading glimpses placed on the actor's ground-truth joints
  (``training/oracle.py``; train and test), the upper bound of the glimpse path; L_G is a
  constant on fixed boxes and is switched off;
- ``frozen``: the full model with the stage-1 backbone frozen (``freeze_backbone``, batch-norm
  statistics included);
- ``sum_gru``: Table 3 row 3, the glimpse vectors summed into one GRU (``glimpse_pooling=sum``,
  one worker, no memory), with the row's losses L_D + L_P;
- ``same_lr``: the full model with the recipe before these three (one learning rate for all, no
  head warm-up, batch-norm statistics from each batch);
- ``global_glimpses``: Table 3's last row, the global classifier on the pooled layer4 map added
  to the glimpse cloud's logits (``global_fusion``; the paper gives no more detail than
  "Glimpse Clouds + Global model", this is the late fusion of the two classifiers).

Each arm records its learning curve (train and validation accuracy per epoch, ``execute.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Arm:
    """One row of the ablation table.

    Attributes:
        key: short name (run folder, JSON key).
        title: row title in the Markdown table.
        losses: which of L_D, L_P, L_G are on.
        overrides: training-config overrides on top of the shared continuation settings;
            ``{seed}`` stands for the run's seed.
        paper: the paper's accuracy (NTU RGB+D, %) as ``{"cs": .., "cv": ..}``, empty if none.
        paper_row: where the paper's number comes from.
        head: True when the arm runs the recurrent head (it has glimpses).
    """

    key: str
    title: str
    losses: str
    overrides: tuple[str, ...]
    paper: dict[str, float] = field(default_factory=dict)
    paper_row: str = ""
    head: bool = True


ARMS: tuple[Arm, ...] = (
    Arm("global", "global model", "L_D+L_P", ("stage=global",),
        {"cs": 85.5, "cv": 92.1}, "Table 3, global model, L_D+L_P", head=False),
    Arm("full", "Glimpse Clouds (full)", "L_D+L_P+L_G", ("stage=full",),
        {"cs": 86.6, "cv": 93.2}, "Table 3, Glimpse Clouds, L_D+L_P+L_G"),
    Arm("context", "full, the paper's locator (eq. 3 on [h, c_t], no map)", "L_D+L_P+L_G",
        ("stage=full", "model.glimpse_locator=context"), {},
        "the paper's model as written (Table 3's number is the full row's)"),
    Arm("same_lr", "full, earlier recipe (one rate, no warm-up, batch statistics)",
        "L_D+L_P+L_G",
        ("stage=full", "optim.head_lr=0", "optim.head_warmup_epochs=0",
         "freeze_backbone_bn=false"), {},
        "not in the paper (the paper's single rate, end to end from the start)"),
    Arm("oracle", "full, oracle glimpses on the actor's joints", "L_D+L_P",
        ("stage=full", "model.glimpse_locations=oracle", "loss.glimpse=0"),
        {}, "not in the paper (upper bound of the glimpse path)"),
    Arm("no_lg", "full without L_G", "L_D+L_P", ("stage=full", "loss.glimpse=0"),
        {"cs": 86.4, "cv": 93.0}, "Table 3, Glimpse Clouds, L_D+L_P"),
    Arm("random", "full, random glimpse locations", "L_D+L_P+L_G",
        ("stage=full", "model.glimpse_locations=random", "model.glimpse_seed={seed}"),
        {"cs": 80.3, "cv": 87.8}, "Table 4, Seq. 2D, random sampling"),
    Arm("c1", "full, C=1 worker", "L_D+L_P+L_G", ("stage=full", "model.num_workers=1"),
        {}, "not reported (C, G chosen from 1..4 by validation; C=G=3 best)"),
    Arm("frozen", "full, stage-1 backbone frozen", "L_D+L_P+L_G",
        ("stage=full", "freeze_backbone=true"), {}, "not in the paper"),
    Arm("sum_gru", "sum of glimpses + GRU (no memory, no workers)", "L_D+L_P",
        ("stage=full", "model.glimpse_pooling=sum", "model.num_workers=1", "loss.glimpse=0"),
        {"cs": 85.8, "cv": 92.4}, "Table 3, Global model + Σ Glimpses + GRU, L_D+L_P"),
    Arm("global_glimpses", "Glimpse Clouds + global model", "L_D+L_P+L_G",
        ("stage=full", "model.global_fusion=true"),
        {"cs": 86.6, "cv": 93.2}, "Table 3, Glimpse Clouds + Global model"),
)
ARM_KEYS = tuple(a.key for a in ARMS)


@dataclass(frozen=True)
class Run:
    """One training run: its folder, its ``train.py`` arguments and what it waits for."""

    seed: int
    arm: str            # an arm key, or "stage1"
    out_dir: Path
    argv: tuple[str, ...]
    after: str = ""     # key of the run that must finish first ("" for none)

    @property
    def key(self) -> str:
        """Unique name, e.g. ``seed1/full``."""
        return f"seed{self.seed}/{self.arm}"


@dataclass(frozen=True)
class Budget:
    """Settings shared by all runs of one seed."""

    config: Path
    data_root: Path
    epochs_stage1: int
    epochs: int
    lr: float
    head_lr: float
    head_warmup: int
    keep_bn: bool
    grad_clip: float
    threads: int
    extra: tuple[str, ...] = ()     # further overrides for every run (quick mode)


def plan(budget: Budget, seeds: list[int], arms: list[str], out: Path) -> list[Run]:
    """All runs, stage 1 of each seed before its arms.

    Raises:
        ValueError: on an unknown arm key.
    """
    unknown = sorted(set(arms) - set(ARM_KEYS))
    if unknown:
        raise ValueError(f"--arms: unknown arm {unknown[0]!r} (known: {', '.join(ARM_KEYS)})")
    runs = []
    for seed in seeds:
        common = ("--config", str(budget.config), f"data.root={budget.data_root}",
                  f"seed={seed}", f"threads={budget.threads}", "progress=false") + budget.extra
        stage1_dir = out / f"seed{seed}" / "stage1"
        stage1 = Run(seed, "stage1", stage1_dir, common + (
            "stage=global", f"optim.epochs={budget.epochs_stage1}", f"out_dir={stage1_dir}"))
        runs.append(stage1)
        for arm in ARMS:
            if arm.key not in arms:
                continue
            arm_dir = out / f"seed{seed}" / arm.key
            extra = tuple(o.format(seed=seed) for o in arm.overrides)
            # The shared head settings come before the arm's overrides, which may replace them.
            head = (f"optim.head_lr={budget.head_lr}",
                    f"optim.head_warmup_epochs={budget.head_warmup}",
                    f"freeze_backbone_bn={str(budget.keep_bn).lower()}")
            runs.append(Run(seed, arm.key, arm_dir, common + head + extra + (
                f"init={stage1_dir / 'best.pt'}", f"optim.epochs={budget.epochs}",
                f"optim.lr={budget.lr}", f"optim.grad_clip={budget.grad_clip}",
                f"out_dir={arm_dir}"), after=stage1.key))
    return runs


def arm_by_key(key: str) -> Arm:
    """The :class:`Arm` called ``key``."""
    for arm in ARMS:
        if arm.key == key:
            return arm
    raise ValueError(f"unknown arm {key!r} (known: {', '.join(ARM_KEYS)})")
