"""``python -m training.ablation --config config/train/ablation.yaml --seeds 3``.

Generates the synthetic distractor scene once (``--data``), then for each seed trains stage 1
and the arms of :mod:`training.ablation.arms` on the same data and budget (``--jobs`` runs
side by side), scores where the glimpses land, and writes ``ablation.json``, ``ablation.md``,
``placement.png`` and ``curves.png`` (learning curves) into ``--out``. Finished runs are
skipped, so an interrupted ablation continues where it stopped (an unfinished training run
resumes from its ``last.pt``). ``--quick`` is a smoke run of the whole pipeline on tiny data
(1 or 2 epochs per run).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path

from tqdm import tqdm

from glimpse_ros.bench.common import cpu_name
from training.ablation.arms import ARM_KEYS, Budget, Run, plan
from training.ablation.curves import curves_png
from training.ablation.execute import execute
from training.ablation.report import (markdown, placement_png, pose_summary, sign_checks,
                                      summarise)
from training.synthetic.actions import ACTION_NAMES

# Tiny settings of --quick: data, model input and per-run overrides.
QUICK_DATA = dict(videos=36, width=64, height=48, frames=8, size=40)
QUICK_OVERRIDES = ("model.resize_size=40", "model.crop_size=32", "model.frames=4",
                   "model.memory_slots=4", "optim.batch_size=4",
                   "data.num_workers=0", "data.max_test_samples=8", "data.test_clips=1",
                   "data.val_fraction=0.2")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, default=Path("config/train/ablation.yaml"),
                    help="training config shared by every run")
    ap.add_argument("--seeds", type=int, default=3, help="training seeds 0..N-1")
    ap.add_argument("--arms", default=",".join(ARM_KEYS), help="comma-separated arm keys")
    ap.add_argument("--out", type=Path, default=Path("runs/ablation"))
    ap.add_argument("--data", type=Path, default=Path("data/ablation"),
                    help="folder for the generated videos (raw/) and their prepared copy")
    ap.add_argument("--videos", type=int, default=1440)
    ap.add_argument("--data-seed", type=int, default=0)
    ap.add_argument("--width", type=int, default=160)
    ap.add_argument("--height", type=int, default=120)
    ap.add_argument("--frames", type=int, default=32, help="frames per video")
    ap.add_argument("--size", type=int, default=128, help="prepared frame size")
    ap.add_argument("--epochs-stage1", type=int, default=12, help="stage-1 epochs (every seed)")
    ap.add_argument("--epochs", type=int, default=10, help="epochs of every arm after stage 1")
    ap.add_argument("--lr", type=float, default=2e-4, help="learning rate of every arm")
    ap.add_argument("--head-lr", type=float, default=1e-3,
                    help="learning rate of the recurrent head in every arm (0 = --lr); "
                         "stage 1's rate from scratch")
    ap.add_argument("--head-warmup", type=int, default=4,
                    help="epochs of every arm in which only the new head learns (of --epochs)")
    ap.add_argument("--keep-bn", action=argparse.BooleanOptionalAction, default=True,
                    help="every arm keeps the backbone's stage-1 batch-norm statistics "
                         "(freeze_backbone_bn); --no-keep-bn normalises with each batch's")
    ap.add_argument("--grad-clip", type=float, default=5.0, help="gradient clipping of every arm")
    ap.add_argument("--jobs", type=int, default=None,
                    help="training runs side by side (default 2; 1 with --quick, in-process)")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch threads per run (default: CPU count / jobs)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: tiny data, 1 epoch of stage 1 and 2 of every arm (the first "
                         "the head's warm-up), outputs of the same structure")
    args = ap.parse_args(argv)
    if args.jobs is None:
        args.jobs = 1 if args.quick else 2
    if args.seeds < 1 or args.jobs < 1 or args.videos < 1:
        ap.error("--seeds, --jobs and --videos must be >= 1")
    if args.quick:
        for k, v in QUICK_DATA.items():
            setattr(args, k, v)
        args.epochs_stage1, args.epochs, args.head_warmup = 1, 2, 1
    if not 0 <= args.head_warmup <= args.epochs:
        ap.error("--head-warmup must be in [0, --epochs]")
    return args


def ensure_data(args: argparse.Namespace, labels: list[str]) -> tuple[Path, Path]:
    """Generate and prepare the distractor scene unless present; return (raw, prepared).

    Raises:
        ValueError: when ``--data`` holds videos generated with other settings.
    """
    from training.ntu.prepare import prepare
    from training.synthetic.__main__ import main as synthetic

    raw, prepared = args.data / "raw", args.data / f"prepared{args.size}"
    wanted = dict(seed=args.data_seed, videos=args.videos, size=[args.width, args.height],
                  frames=args.frames, scene="distractor")
    meta_path = raw / "synthetic.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        differs = [k for k, v in wanted.items() if meta.get(k) != v]
        if differs:
            raise ValueError(f"{raw}: generated with other settings ({differs[0]}: "
                             f"{meta.get(differs[0])} vs {wanted[differs[0]]}); use another "
                             f"--data folder")
    else:
        synthetic(["--out", str(raw), "--videos", str(args.videos), "--seed",
                   str(args.data_seed), "--width", str(args.width), "--height",
                   str(args.height), "--frames", str(args.frames), "--scene", "distractor",
                   "--workers", str(args.jobs)])
    if not (prepared / "index.json").exists():
        prepare(raw, raw, prepared, args.size, labels, workers=args.jobs, dataset="synthetic")
    return raw, prepared


def schedule(runs: list[Run], raw: Path, jobs: int) -> dict[str, dict]:
    """Execute ``runs`` (each after the run it waits for), ``jobs`` at a time, with a bar."""
    records: dict[str, dict] = {}
    bar = tqdm(total=len(runs), desc="ablation", unit="run")
    if jobs == 1:
        for run in runs:
            bar.set_postfix_str(run.key)
            records[run.key] = execute(run, raw)
            bar.update()
        bar.close()
        return records
    pending = list(runs)
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        active = {}
        while pending or active:
            for run in [r for r in pending if not r.after or r.after in records]:
                if len(active) >= jobs:
                    break
                pending.remove(run)
                active[pool.submit(execute, run, raw)] = run
            bar.set_postfix_str(", ".join(r.key for r in active.values()))
            finished, _ = wait(active, return_when=FIRST_COMPLETED)
            for fut in finished:
                run = active.pop(fut)
                records[run.key] = fut.result()
                bar.update()
    bar.close()
    return records


def check_setup(out: Path, setup: dict) -> None:
    """Refuse to mix runs of different settings in one ``--out`` (seeds and arms may grow)."""
    path = out / "setup.json"
    if path.exists():
        old = json.loads(path.read_text())
        for key, value in setup.items():
            if key not in ("seeds", "arms") and old.get(key) != value:
                raise ValueError(f"{out}: earlier runs used {key}={old.get(key)!r}, now "
                                 f"{value!r}; use another --out folder")
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(setup, indent=1))


def main(argv: list[str] | None = None) -> int:
    """Run the ablation; returns the exit status."""
    from training.config import load_train_config, read_labels

    args = parse_args(argv)
    # Fail at start-up on a bad config (and learn the label file of the data).
    labels = read_labels(load_train_config(args.config).data.labels)
    if list(labels) != list(ACTION_NAMES):
        raise ValueError(f"{args.config}: data.labels must list the synthetic actions "
                         f"({', '.join(ACTION_NAMES)})")
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = sorted(set(arms) - set(ARM_KEYS))
    if unknown:
        raise ValueError(f"--arms: unknown arm {unknown[0]!r} (known: {', '.join(ARM_KEYS)})")
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.jobs)
    setup = dict(config=str(args.config), data=str(args.data), videos=args.videos,
                 data_seed=args.data_seed, size=[args.width, args.height], frames=args.frames,
                 prepared_size=args.size, epochs_stage1=args.epochs_stage1, epochs=args.epochs,
                 lr=args.lr, head_lr=args.head_lr, head_warmup=args.head_warmup,
                 keep_bn=args.keep_bn, grad_clip=args.grad_clip, quick=args.quick,
                 seeds=args.seeds, arms=arms)
    check_setup(args.out, setup)
    t0 = time.time()
    raw, prepared = ensure_data(args, labels)
    data_seconds = time.time() - t0
    budget = Budget(config=args.config, data_root=prepared, epochs_stage1=args.epochs_stage1,
                    epochs=args.epochs, lr=args.lr, head_lr=args.head_lr,
                    head_warmup=args.head_warmup, keep_bn=args.keep_bn,
                    grad_clip=args.grad_clip, threads=threads,
                    extra=QUICK_OVERRIDES if args.quick else ())
    runs = plan(budget, list(range(args.seeds)), arms, args.out)
    records = schedule(runs, raw, args.jobs)
    results: dict[int, dict[str, dict]] = {}
    for run in runs:
        if run.arm != "stage1":
            results.setdefault(run.seed, {})[run.arm] = records[run.key]
    summary = summarise(results)
    checks = sign_checks(results)
    first = next(iter(records.values()))
    setup.update(test_videos=first["test_videos"], test_clips=first["test_clips"],
                 threads=threads, jobs=args.jobs, cpu=cpu_name())
    pose = pose_summary([records[r.key].get("pose_placement") for r in runs
                         if r.arm == "stage1"])
    report = dict(setup=setup, summary=summary, sign_checks=checks, pose_placement=pose,
                  runs={r.key: records[r.key] for r in runs},
                  seconds=dict(data=round(data_seconds, 1), wall=round(time.time() - t0, 1),
                               runs=round(sum(r["seconds"] for r in records.values()), 1),
                               runs_cpu=round(sum(r.get("cpu_seconds", 0.0)
                                                  for r in records.values()), 1)))
    (args.out / "ablation.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.out / "ablation.md").write_text(markdown(summary, checks, setup, pose))
    examples = {r.arm: r.out_dir / "placement.png" for r in runs if r.seed == 0}
    placement_png(summary, args.out / "placement.png",
                  {k: p for k, p in examples.items() if p.exists()})
    curves_png(summary, args.out / "curves.png")
    print((args.out / "ablation.md").read_text())
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except ValueError as err:       # configuration and data-folder errors: no traceback
        raise SystemExit(f"error: {err}") from None
