"""Two-stage Glimpse Clouds training (paper §6), single process or ``torchrun`` DDP.

Stage 1 (``stage=global``): the inflated ResNet with the global classifier, L_D + L_P, optionally
initialised from an ImageNet 2D ResNet file (``pretrained_2d=...``). Stage 2 (``stage=full``): the
full model end to end (L_D + L_P + L_G), initialised from the stage-1 checkpoint (``init=...``).

    python training/train.py --config config/train/synthetic.yaml [key=value ...]
    torchrun --nproc_per_node 4 training/train.py --config config/train/ntu_cs.yaml
    python training/train.py --config ... --resume            # continue from out_dir/last.pt
    python training/train.py --resume-from runs/x/last.pt
    python training/train.py --config ... --test-only         # evaluate out_dir/best.pt

``--resume`` / ``--test-only`` use the configuration stored in the checkpoint (stage, init,
out_dir, model, data...); ``key=value`` overrides given on the command line still win (logged).
Without CUDA (or with ``device=cpu``) all ranks run on the CPU with the gloo backend; with
``device=auto`` that fallback is announced by a warning.

Outputs in ``out_dir``: ``last.pt`` / ``best.pt`` (self-describing training checkpoints),
TensorBoard scalars, ``model.safetensors`` (best model, deployable), ``results.{json,md}``,
``confusion.png``, ``rank_params.json`` (parameter digests of all ranks after training).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from glimpse_ros.config_loader import to_dict  # noqa: E402
from glimpse_ros.model.checkpoint import save_checkpoint  # noqa: E402
from glimpse_ros.model.glimpse_clouds import GlimpseClouds  # noqa: E402
from training import distributed as dist_utils  # noqa: E402
from training.checkpoints import (git_revision, load_exact, load_matching,  # noqa: E402
                                  load_model_weights, load_training_checkpoint,
                                  save_training_checkpoint)
from training.config import TrainConfig, load_train_config, read_labels  # noqa: E402
from training.evaluate import metrics, predict, results_table, write_report  # noqa: E402
from training.engine import freeze_untrained, init_memory_metric, train_one_epoch  # noqa: E402
from training.loaders import build_datasets, make_loader, setup_logging  # noqa: E402
from training.optimizer import (build_optimizer, load_optimizer_state,  # noqa: E402
                                set_epoch_lr)
from training.run_config import check_pretrained_2d, resolve_config  # noqa: E402

log = logging.getLogger("training")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, default=None, help="YAML under config/train/")
    ap.add_argument("--resume", action="store_true",
                    help="continue from out_dir/last.pt with its stored configuration")
    ap.add_argument("--resume-from", type=Path, default=None,
                    help="continue from this training checkpoint instead")
    ap.add_argument("--test-only", action="store_true",
                    help="evaluate the checkpoint's stage (stored configuration) and exit")
    ap.add_argument("--checkpoint", type=Path, default=None,
                    help="with --test-only: checkpoint to evaluate (default: out_dir/best.pt)")
    ap.add_argument("overrides", nargs="*", help="key=value config overrides, e.g. optim.lr=3e-4")
    return ap.parse_args(argv)


def configure(args: argparse.Namespace) -> tuple[TrainConfig, Path | None]:
    """The run's configuration and the checkpoint it resumes or evaluates (``None`` otherwise)."""
    cfg = load_train_config(args.config, args.overrides)
    if args.resume or args.resume_from:
        path = args.resume_from or Path(cfg.out_dir) / "last.pt"
        cfg = resolve_config(cfg, args.overrides, path, "resume")
        if args.resume and Path(cfg.out_dir) != path.parent:
            # --resume found last.pt in out_dir: the run continues there (e.g. a copied run).
            log.info("resume: out_dir %s (stored: %s)", path.parent, cfg.out_dir)
            cfg = dataclasses.replace(cfg, out_dir=str(path.parent))
        return cfg, path
    if args.test_only:
        path = args.checkpoint or Path(cfg.out_dir) / "best.pt"
        return resolve_config(cfg, args.overrides, path, "test-only"), path
    check_pretrained_2d(cfg)
    if cfg.freeze_backbone_bn and not (cfg.init or cfg.pretrained_2d.strip()):
        raise ValueError("freeze_backbone_bn: keeps the batch-norm statistics of a trained "
                         "backbone; give init (or pretrained_2d, or --resume a run), not a model "
                         "from scratch")
    return cfg, None


def warn_cpu_fallback(cfg: TrainConfig, device: torch.device, world: int) -> None:
    """Say clearly when ``device=auto`` ends up on the CPU (rank 0 only)."""
    if device.type != "cpu" or cfg.device != "auto" or not dist_utils.is_main():
        return
    log.warning("no CUDA: %s. Training runs on the CPU with the gloo backend (%d process(es)), "
                "far too slow for the paper model. Install the CUDA build of torch "
                "(docs/training.md, 'GPU setup'), or set device=cpu to train on the CPU on "
                "purpose.",
                dist_utils.cpu_fallback_reason(), world)


def test_only(model: GlimpseClouds, path: Path, cfg: TrainConfig, data: dict, labels: list[str],
              device: torch.device) -> None:
    """Score ``path`` on the test split; reports go to ``<checkpoint folder>/test``."""
    global_only = cfg.stage == "global"
    name = "global_model" if global_only else "glimpse_clouds"
    load_exact(model, path)
    loader = make_loader(data["test"], cfg, train=False)
    logits, y, _ = predict(model, loader, device, global_only, cfg.progress)
    if dist_utils.is_main():
        result = metrics(logits, y, model.config.num_classes)
        write_report(result, labels, path.parent / "test", cfg.data.dataset, cfg.data.protocol,
                     name)
        log.info("test-only %s (stage %s) top-1 %.2f%% on %d videos", path, cfg.stage,
                 result["top1"], result["samples"])
        print(results_table(result, cfg.data.dataset, cfg.data.protocol, name))


def main(argv: list[str] | None = None) -> int:
    """Train (or evaluate) according to the command line; returns the exit status."""
    args = parse_args(argv)
    setup_logging()
    cfg, source = configure(args)
    rank, world, device = dist_utils.init_distributed(cfg.device)
    warn_cpu_fallback(cfg, device, world)
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
    log.info("world %d, device %s, stage %s; train %d / val %d / test %d videos", world, device,
             cfg.stage, len(data["train"]), len(data["val"]), len(data["test"]))
    model = GlimpseClouds(mcfg).to(device)
    global_only = cfg.stage == "global"
    name = "global_model" if global_only else "glimpse_clouds"

    if args.test_only:
        test_only(model, source, cfg, data, labels, device)
        dist_utils.cleanup()
        return 0

    train_loader = make_loader(data["train"], cfg, train=True)
    val_loader = make_loader(data["val"], cfg, train=False)
    start_epoch, step, best, history = 0, 0, -1.0, []
    freeze_untrained(model, cfg.stage, cfg.freeze_backbone)
    optimizer = build_optimizer(model, cfg.optim)
    log.info("optimizer groups: %s", ", ".join(
        f"{g['name']} lr {g['lr']:g} ({sum(p.numel() for p in g['params'])} weights)"
        for g in optimizer.param_groups))
    scaler = torch.amp.GradScaler("cuda", enabled=cfg.amp and device.type == "cuda")
    if source is not None:
        ckpt = load_training_checkpoint(source, device)
        model.load_state_dict(ckpt["model"])
        load_optimizer_state(optimizer, ckpt["optimizer"], source)
        if ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        start_epoch, step = int(ckpt["epoch"]) + 1, int(ckpt["step"])
        best, history = float(ckpt.get("best_val", -1.0)), list(ckpt.get("history", []))
        del ckpt
        log.info("resumed from %s at step %d (epoch %d)", source, step, start_epoch)
    else:
        if cfg.inflate_from:
            from glimpse_ros.model.inflate import load_inflated
            report = load_inflated(model.backbone, cfg.inflate_from, cfg.inflate_mode)
            log.info("inflated %s into the backbone: %s", cfg.inflate_from, report)
        elif cfg.pretrained_2d:
            log.info("pretrained_2d=%s: the backbone starts from random weights",
                     cfg.pretrained_2d)
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
        # freeze_untrained left only parameters that every step's loss reaches; rank 0's
        # weights (incl. an initialised memory metric) are broadcast when DDP is built.
        ddp = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
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
        set_epoch_lr(optimizer, cfg.optim, epoch, cfg.stage)
        try:
            step, train_stats = train_one_epoch(ddp, train_loader, optimizer, scaler, cfg,
                                                device, epoch, step, writer)
        except FloatingPointError as err:
            log.error("rank %d: %s", rank, err)
            if writer is not None:
                writer.close()
            dist_utils.cleanup()
            return 1
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
    # Final test of the best model (by validation), then export it. Every rank reads the model
    # weights of best.pt (written by rank 0 before the last barrier) onto its own device.
    state, best_info = load_model_weights(out_dir / "best.pt", device)
    model.load_state_dict(state)
    del state
    test_loader = make_loader(data["test"], cfg, train=False)
    logits, y, _ = predict(model, test_loader, device, global_only, cfg.progress)
    if dist_utils.is_main():
        result = metrics(logits, y, mcfg.num_classes)
        write_report(result, labels, out_dir, cfg.data.dataset, cfg.data.protocol, name)
        extra = dict(command=command, stage=cfg.stage, step=int(best_info["step"]),
                     epoch=int(best_info["epoch"]), val=best_info["metrics"],
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


def cli() -> int:
    """``main`` with caller errors (configuration, files) reported in one line, exit status 2."""
    try:
        return main()
    except ValueError as err:
        print(f"train.py: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(cli())
