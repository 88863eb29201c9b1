"""One training epoch and the per-stage set-up around it (torchvision's ``engine`` split).

Shared by ``train.py``; no process-group set-up here, only the collectives every rank joins.
"""

from __future__ import annotations

import logging
import os

import torch
from torch.utils.data import DataLoader, DistributedSampler

from glimpse_ros.model.glimpse_clouds import GlimpseClouds
from glimpse_ros.model.losses import LossWeights, total_loss
from training import distributed as dist_utils
from training.config import TrainConfig
from training.optimizer import warming_up
from training.oracle import glimpse_inputs

log = logging.getLogger("training")

# Test hook: "RANK:STEP" makes that rank's loss NaN at that global step (see test_training_ddp).
NONFINITE_HOOK = "GLIMPSE_TRAIN_NONFINITE_AT"


def init_memory_metric(model: GlimpseClouds, loader: DataLoader, device: torch.device,
                       batches: int = 4) -> None:
    """Initialise the memory distance from glimpse vectors of a few training batches (§4.2)."""
    if model.config.glimpse_pooling == "sum":  # no memory: nothing reads the metric
        return
    feats = []
    model.eval()
    with torch.no_grad():
        for i, batch in enumerate(loader):
            if i >= batches:
                break
            Z, c = model.backbone(batch["video"].to(device))  # noqa: N806 (B, D, T, h, w)
            state = model.head.initial_state(Z.shape[0], device=device)
            given = glimpse_inputs(model, batch, device).get("glimpses")  # oracle boxes
            for t in range(Z.shape[2]):
                state, _ = model.head.step(state, Z[:, :, t], c[:, t],
                                           given=None if given is None else given[:, t])
            feats.append(state.memory_values.flatten(0, 1))                 # (B*K, D)
    try:
        model.head.memory.init_metric(torch.cat(feats).float())
        log.info("memory metric initialised from %d glimpse vectors", sum(len(f) for f in feats))
    except ValueError as err:
        log.warning("memory metric left at identity: %s", err)


def freeze_untrained(model: GlimpseClouds, stage: str,
                     freeze_backbone: bool = False) -> list[torch.nn.Parameter]:
    """Stop gradients for what the stage does not train; returns the parameters it trains.

    Stage 1 does not run the recurrent head; stage 2 does not compute the global classifier
    (removed after stage 1, paper §6) unless ``global_fusion`` adds it. The ablation switches
    leave more idle: the locator and glimpse GRU under random / oracle boxes, the memory under
    ``glimpse_pooling: sum``, the backbone with ``freeze_backbone``. Every parameter left
    trainable then gets a gradient at every step, so DDP needs no ``find_unused_parameters``
    graph search.
    """
    cfg = model.config
    if stage == "global":
        idle = [model.head]
    else:
        idle = [] if cfg.global_fusion else [model.global_fc]
        if cfg.glimpse_locations != "learned":
            idle += [model.head.locator, model.head.glimpse_rnn]
        if cfg.glimpse_pooling == "sum":
            idle.append(model.head.memory)
        if freeze_backbone:
            idle.append(model.backbone)
    for module in idle:
        for p in module.parameters():
            p.requires_grad_(False)
    return [p for p in model.parameters() if p.requires_grad]


def _injected_nonfinite(step: int) -> bool:
    """Whether the test hook ``GLIMPSE_TRAIN_NONFINITE_AT=RANK:STEP`` hits this rank and step."""
    spec = os.environ.get(NONFINITE_HOOK)
    if not spec:
        return False
    rank, at = (int(v) for v in spec.split(":"))
    return rank == int(os.environ.get("RANK", "0")) and step == at


def train_one_epoch(model, loader, optimizer, scaler, cfg: TrainConfig, device, epoch: int,
                    step: int, writer) -> tuple[int, dict]:
    """Run one pass over the training loader; returns the new global step and mean loss parts."""
    model.train()
    if cfg.freeze_backbone or cfg.freeze_backbone_bn or warming_up(cfg.optim, cfg.stage, epoch):
        # Frozen (for good or while the head warms up) also means frozen batch-norm statistics.
        getattr(model, "module", model).backbone.eval()
    loader.dataset.set_epoch(epoch)
    if loader.generator is not None:
        # Shuffle order depends on (seed, epoch) only, so a resumed run sees the same batches.
        loader.generator.manual_seed(cfg.seed + epoch)
    if isinstance(loader.sampler, DistributedSampler):
        loader.sampler.set_epoch(epoch)
    weights = LossWeights(pose=cfg.loss.pose, glimpse=cfg.loss.glimpse)
    global_only = cfg.stage == "global"
    sums: dict[str, float] = {}
    n = 0
    from tqdm import tqdm
    bar = tqdm(loader, desc=f"epoch {epoch}", disable=not (cfg.progress and dist_utils.is_main()))
    for batch in bar:
        if cfg.optim.max_steps and step >= cfg.optim.max_steps:
            break
        video = batch["video"].to(device, non_blocking=True)        # (B, 3, T, H, W)
        labels = batch["label"].to(device)
        joints, mask = batch["joints"].to(device), batch["mask"].to(device)
        with torch.autocast(device.type, enabled=scaler.is_enabled()):
            out = model(video, global_only=global_only,
                        **glimpse_inputs(model, batch, device))
        loss, parts = total_loss(out.__class__(**{k: (v.float() if v is not None else v)
                                                  for k, v in vars(out).items()}),
                                 labels, joints, mask, weights, global_only=global_only)
        if _injected_nonfinite(step):
            loss = loss * float("nan")
        # Every rank learns whether any rank's loss is non-finite, so all stop together instead
        # of the others waiting in the next collective until the backend times out.
        bad = dist_utils.ranks_with(~torch.isfinite(loss.detach()), device)
        if bad:
            if not torch.isfinite(loss):
                log.error("non-finite loss at step %d on this rank: %s", step,
                          {k: float(v) for k, v in parts.items()})
            raise FloatingPointError(f"non-finite loss at step {step} on rank(s) {bad}: "
                                     "stopping every rank")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if cfg.optim.grad_clip > 0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        step += 1
        n += 1
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + float(v)
        acc = (out.logits.argmax(1) == labels).float().mean().item()
        sums["accuracy"] = sums.get("accuracy", 0.0) + acc
        if writer is not None and step % cfg.log_every == 0:
            for k, v in parts.items():
                writer.add_scalar(f"train/{k}", float(v), step)
            writer.add_scalar("train/accuracy", acc, step)
            writer.add_scalar("train/lr", optimizer.param_groups[0]["lr"], step)
        bar.set_postfix(loss=f"{float(parts['total']):.3f}", acc=f"{acc:.2f}")
    return step, {k: v / max(n, 1) for k, v in sums.items()}
