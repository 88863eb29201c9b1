"""The Adam optimizer of a training run, with the recurrent head in its own parameter group.

Stage 2 starts the backbone, the pose head (and the global classifier under ``global_fusion``)
from the stage-1 checkpoint, but the recurrent head (glimpse GRU, locator, what&where, memory
metric, workers) from random weights. ``optim.head_lr`` gives that head its own learning rate
(0 = ``optim.lr``, the paper's single rate): fine-tuning practice, where the new layers learn at
the rate of training from scratch and the pretrained ones at the fine-tuning rate.
``optim.head_warmup_epochs`` first trains the head alone on the stage-1 features (the rest at
rate 0, the backbone's batch-norm statistics kept, see :func:`warming_up`), then everything end
to end: the head does not chase features that move while it is still random. The ablation
(``training/ablation``) measures what each changes.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from training.config import OptimConfig

log = logging.getLogger("training")

# Parameter-group names.
HEAD, REST = "head", "rest"


def head_lr(cfg: OptimConfig) -> float:
    """The head's base learning rate (``optim.head_lr``, or ``optim.lr`` when it is 0)."""
    return cfg.head_lr if cfg.head_lr > 0 else cfg.lr


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Adam:
    """Adam over the trainable parameters of ``model``: the head's group, then the rest.

    Args:
        model: a ``GlimpseClouds`` whose untrained parts already have ``requires_grad=False``
            (``engine.freeze_untrained``).
        cfg: learning rates and weight decay.

    Returns:
        The optimizer; each group carries its ``name`` and ``base_lr`` (see :func:`set_epoch_lr`).
        A group without trainable parameters is left out (stage 1 trains no head).
    """
    head_ids = {id(p) for p in model.head.parameters()}
    trained = [p for p in model.parameters() if p.requires_grad]
    groups = [
        dict(params=[p for p in trained if id(p) in head_ids], name=HEAD, base_lr=head_lr(cfg)),
        dict(params=[p for p in trained if id(p) not in head_ids], name=REST, base_lr=cfg.lr),
    ]
    groups = [dict(g, lr=g["base_lr"]) for g in groups if g["params"]]
    if not groups:
        raise ValueError("nothing to train: every parameter is frozen")
    return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict,
                         source: str | Path) -> None:
    """Restore the optimizer of a resumed run; start Adam afresh if its groups differ.

    A stage-2 checkpoint written before the head had its own group holds one parameter group
    where this run has two: its moments cannot be mapped onto the new groups, so they start from
    zero (a warning says so) while the weights, the epoch and the step still resume.
    """
    saved = [len(g["params"]) for g in state.get("param_groups", [])]
    wanted = [len(g["params"]) for g in optimizer.param_groups]
    if saved != wanted:
        log.warning("%s: the optimizer state has parameter groups of %s tensors, this run %s "
                    "(head and rest, training/optimizer.py): Adam's moments start afresh",
                    source, saved, wanted)
        return
    optimizer.load_state_dict(state)


def warming_up(cfg: OptimConfig, stage: str, epoch: int) -> bool:
    """Whether ``epoch`` of ``stage`` trains the head alone (``optim.head_warmup_epochs``)."""
    return stage == "full" and epoch < cfg.head_warmup_epochs


def set_epoch_lr(optimizer: torch.optim.Optimizer, cfg: OptimConfig, epoch: int,
                 stage: str = "full") -> None:
    """Apply the step decay of ``epoch`` (``lr_decay`` per passed ``lr_decay_epochs``) per group.

    A group's base rate comes from ``cfg`` by the group's name, not from the optimizer's stored
    state, so a resumed run follows the configuration it resumed with. While the head warms up
    (:func:`warming_up`) every group but the head's has rate 0: its weights do not move (Adam's
    step is the rate times its normalised moment), and every parameter still gets its gradient,
    so DDP's gradient hooks are unchanged.
    """
    decay = cfg.lr_decay ** sum(epoch >= e for e in cfg.lr_decay_epochs)
    frozen = warming_up(cfg, stage, epoch)
    for group in optimizer.param_groups:
        head = group.get("name") == HEAD
        base = head_lr(cfg) if head else cfg.lr
        group["base_lr"] = base
        group["lr"] = 0.0 if frozen and not head else base * decay
