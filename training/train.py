"""Two-stage Glimpse Clouds training (paper §6), single process or ``torchrun`` DDP.

Stage 1 (``stage=global``): the inflated ResNet with the global classifier, L_D + L_P, optionally
initialised from an ImageNet 2D ResNet file (``pretrained_2d=...``). Stage 2 (``stage=full``): the
full model end to end (L_D + L_P + L_G), initialised from the stage-1 checkpoint (``init=...``).

    python training/train.py --config config/train/synthetic.yaml [key=value ...]
    torchrun --nproc_per_node 4 training/train.py --config config/train/ntu_cs.yaml
    python training/train.py --config ... --resume            # continue from out_dir/last.pt
    python training/train.py --config ... --resume-from runs/x/last.pt
    python training/train.py --config ... --test-only         # evaluate out_dir/best.pt

Outputs in ``out_dir``: ``last.pt`` / ``best.pt`` (self-describing training checkpoints),
TensorBoard scalars, ``model.safetensors`` (best model, deployable), ``results.{json,md}``,
``confusion.png``, ``rank_params.json`` (parameter digests of all ranks after training).
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from glimpse_ros.config import ModelConfig, to_dict  # noqa: E402
from glimpse_ros.model.checkpoint import save_checkpoint  # noqa: E402
from glimpse_ros.model.glimpse_clouds import GlimpseClouds  # noqa: E402
from glimpse_ros.model.losses import LossWeights, total_loss  # noqa: E402
from training import distributed as dist_utils  # noqa: E402
from training.checkpoints import (git_revision, load_exact, load_matching,  # noqa: E402
                                  load_training_checkpoint, save_training_checkpoint)
from training.config import TrainConfig, load_train_config, read_labels  # noqa: E402
from training.dataset import ClipDataset  # noqa: E402
from training.evaluate import metrics, predict, results_table, write_report  # noqa: E402
from training.splits import split_samples  # noqa: E402

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


def init_memory_metric(model: GlimpseClouds, loader: DataLoader, device: torch.device,
                       batches: int = 4) -> None:
    """Initialise the memory distance from glimpse vectors of a few training batches (§4.2)."""
    feats = []
    model.eval()
    with torch.no_grad():
        for i, batch in enumerate(loader):
            if i >= batches:
                break
            Z, c = model.backbone(batch["video"].to(device))  # noqa: N806 (B, D, T, h, w)
            state = model.head.initial_state(Z.shape[0], device=device)
            for t in range(Z.shape[2]):
                state, _ = model.head.step(state, Z[:, :, t], c[:, t])
            feats.append(state.memory_values.flatten(0, 1))                 # (B*K, D)
    try:
        model.head.memory.init_metric(torch.cat(feats).float())
        log.info("memory metric initialised from %d glimpse vectors", sum(len(f) for f in feats))
    except ValueError as err:
        log.warning("memory metric left at identity: %s", err)


def train_one_epoch(model, loader, optimizer, scaler, cfg: TrainConfig, device, epoch: int,
                    step: int, writer) -> tuple[int, dict]:
    """Run one pass over the training loader; returns the new global step and mean loss parts."""
    model.train()
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
            out = model(video, global_only=global_only)
        loss, parts = total_loss(out.__class__(**{k: (v.float() if v is not None else v)
                                                  for k, v in vars(out).items()}),
                                 labels, joints, mask, weights, global_only=global_only)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss at step {step}: {parts}")
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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, default=None, help="YAML under config/train/")
    ap.add_argument("--resume", action="store_true", help="continue from out_dir/last.pt")
    ap.add_argument("--resume-from", type=Path, default=None,
                    help="continue from this training checkpoint instead")
    ap.add_argument("--test-only", action="store_true", help="evaluate and exit")
    ap.add_argument("--checkpoint", type=Path, default=None,
                    help="with --test-only: checkpoint to evaluate (default: out_dir/best.pt)")
    ap.add_argument("overrides", nargs="*", help="key=value config overrides, e.g. optim.lr=3e-4")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Train (or evaluate) according to the command line; returns the exit status."""
    args = parse_args(argv)
    rank, world, device = dist_utils.init_distributed()
    setup_logging()
    cfg = load_train_config(args.config, args.overrides)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    labels = read_labels(cfg.data.labels)
    mcfg = cfg.model_config(len(labels))
    if mcfg.num_classes != len(labels):
        raise ValueError(f"model.num_classes {mcfg.num_classes} != {len(labels)} labels")
    out_dir = Path(cfg.out_dir)
    command = " ".join(shlex.quote(a) for a in [Path(sys.argv[0]).as_posix()] + sys.argv[1:])
    data = build_datasets(cfg, mcfg)
    log.info("world %d, device %s; train %d / val %d / test %d videos", world, device,
             len(data["train"]), len(data["val"]), len(data["test"]))
    model = GlimpseClouds(mcfg).to(device)
    global_only = cfg.stage == "global"
    name = "global_model" if global_only else "glimpse_clouds"

    if args.test_only:
        path = args.checkpoint or out_dir / "best.pt"
        load_exact(model, path)
        loader = make_loader(data["test"], cfg, train=False)
        logits, y, _ = predict(model, loader, device, global_only, cfg.progress)
        if dist_utils.is_main():
            result = metrics(logits, y, mcfg.num_classes)
            write_report(result, labels, out_dir / "test", cfg.data.dataset, cfg.data.protocol,
                         name)
            print(results_table(result, cfg.data.dataset, cfg.data.protocol, name))
        dist_utils.cleanup()
        return 0

    train_loader = make_loader(data["train"], cfg, train=True)
    val_loader = make_loader(data["val"], cfg, train=False)
    start_epoch, step, best, history = 0, 0, -1.0, []
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.optim.lr,
                                 weight_decay=cfg.optim.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=cfg.amp and device.type == "cuda")
    resume = None
    if args.resume or args.resume_from:
        resume = args.resume_from or out_dir / "last.pt"
        ckpt = load_training_checkpoint(resume, device)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        start_epoch, step = int(ckpt["epoch"]) + 1, int(ckpt["step"])
        best, history = float(ckpt.get("best_val", -1.0)), list(ckpt.get("history", []))
        log.info("resumed from %s at step %d (epoch %d)", resume, step, start_epoch)
    else:
        if cfg.pretrained_2d:
            from glimpse_ros.model.inflate import load_inflated
            report = load_inflated(model.backbone, cfg.pretrained_2d, cfg.inflate_mode)
            log.info("inflated %s into the backbone: %s", cfg.pretrained_2d, report)
        if cfg.init:
            load_matching(model, cfg.init)
        factor = model.head.memory.metric.factor
        untrained = torch.equal(factor, torch.eye(factor.shape[0], device=factor.device))
        # Only an untrained (identity) metric is initialised: a fine-tuned model (N-UCLA from
        # NTU) keeps the distance it learned.
        if not global_only and untrained and dist_utils.is_main():
            init_memory_metric(model, train_loader, device)
    ddp = model
    if world > 1:
        # The stage not trained leaves parameters without gradient (head in stage 1,
        # global_fc in stage 2), hence find_unused_parameters.
        ddp = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=True)
    writer = None
    if dist_utils.is_main():
        from torch.utils.tensorboard import SummaryWriter
        writer = SummaryWriter(str(out_dir / "tensorboard"))
        (out_dir / "config.json").write_text(json.dumps(to_dict(cfg), indent=1))

    def checkpoint(path: Path, epoch: int, val: dict) -> None:
        save_training_checkpoint(
            path, model=model.state_dict(), optimizer=optimizer.state_dict(),
            scaler=scaler.state_dict() if scaler.is_enabled() else {}, step=step, epoch=epoch,
            config=to_dict(cfg), model_config=to_dict(mcfg), labels=labels, metrics=val,
            best_val=best, history=history, git_revision=git_revision(), command=command)

    t0 = time.time()
    for epoch in range(start_epoch, cfg.optim.epochs):
        if cfg.optim.max_steps and step >= cfg.optim.max_steps:
            break
        decay = sum(epoch >= e for e in cfg.optim.lr_decay_epochs)
        for g in optimizer.param_groups:
            g["lr"] = cfg.optim.lr * cfg.optim.lr_decay ** decay
        step, train_stats = train_one_epoch(ddp, train_loader, optimizer, scaler, cfg, device,
                                            epoch, step, writer)
        train_stats = {k: dist_utils.all_reduce_mean(v, device) for k, v in train_stats.items()}
        dist_utils.average_buffers(model)
        val = {}
        budget_done = bool(cfg.optim.max_steps) and step >= cfg.optim.max_steps
        last_epoch = epoch + 1 == cfg.optim.epochs or budget_done
        if (epoch + 1) % cfg.eval_every == 0 or last_epoch:
            logits, y, _ = predict(model, val_loader, device, global_only)
            val = metrics(logits, y, mcfg.num_classes)
            val = {"top1": val["top1"], "top5": val["top5"], "samples": val["samples"]}
        history.append(dict(epoch=epoch, step=step, train=train_stats, val=val,
                            seconds=round(time.time() - t0, 1)))
        if dist_utils.is_main():
            log.info("epoch %d step %d: train %s val %s", epoch, step,
                     {k: round(v, 4) for k, v in train_stats.items()}, val)
            for k, v in val.items():
                writer.add_scalar(f"val/{k}", v, step)
            improved = bool(val) and val["top1"] > best
            if improved:
                best = val["top1"]
            checkpoint(out_dir / "last.pt", epoch, val)
            if improved or not (out_dir / "best.pt").exists():
                checkpoint(out_dir / "best.pt", epoch, val)
        dist_utils.barrier()

    digests = dist_utils.all_gather_objects(dist_utils.parameter_digest(model))
    if dist_utils.is_main():
        (out_dir / "rank_params.json").write_text(json.dumps(
            dict(step=step, digests=digests, in_sync=len(set(digests)) == 1), indent=1))
        if len(set(digests)) != 1:
            log.error("ranks ended with different parameters: %s", digests)
    # Final test of the best model (by validation), then export it.
    best_ckpt = load_training_checkpoint(out_dir / "best.pt", device) if dist_utils.is_main() \
        else None
    dist_utils.barrier()
    if world > 1:
        best_ckpt = dist_utils.broadcast_object(best_ckpt, device)
    model.load_state_dict(best_ckpt["model"])
    test_loader = make_loader(data["test"], cfg, train=False)
    logits, y, _ = predict(model, test_loader, device, global_only, cfg.progress)
    if dist_utils.is_main():
        result = metrics(logits, y, mcfg.num_classes)
        write_report(result, labels, out_dir, cfg.data.dataset, cfg.data.protocol, name)
        extra = dict(command=command, stage=cfg.stage, step=int(best_ckpt["step"]),
                     epoch=int(best_ckpt["epoch"]), val=best_ckpt["metrics"],
                     test=dict(top1=result["top1"], top5=result["top5"],
                               samples=result["samples"], clips=cfg.data.test_clips),
                     data=dict(dataset=cfg.data.dataset, root=cfg.data.root,
                               protocol=cfg.data.protocol), seed=cfg.seed,
                     git_revision=git_revision(), train_seconds=round(time.time() - t0, 1))
        save_checkpoint(out_dir / "model.safetensors", model, labels, extra)
        log.info("test %s top-1 %.2f%% top-5 %.2f%% on %d videos; exported %s", name,
                 result["top1"], result["top5"], result["samples"], out_dir / "model.safetensors")
        print(results_table(result, cfg.data.dataset, cfg.data.protocol, name))
        writer.close()
    dist_utils.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
