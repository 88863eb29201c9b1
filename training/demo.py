"""Build the shipped CPU demo model end to end: ``python -m training.demo``.

Steps (each skipped when its output exists): generate synthetic NTU-format videos, prepare them at
128×128, train stage 1 (global model) and stage 2 (full Glimpse Clouds) of the small model with
a causal (streaming) backbone by default, optionally the same two stages with the other temporal
padding (``--compare-padding``: same data, seed and budget) and the global model alone for the
same total number of epochs (attention ablation; ``--skip-baseline`` leaves it out), then copy the
stage-2 model to ``models/demo/`` with ``manifest.json`` (and ``global_vs_full.json`` when the
baseline ran). Accuracies are on held-out synthetic subjects (cross-subject split).
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODEL_NAME = "glimpse_clouds_small_synthetic.safetensors"


def run(cmd: list[str], log: list[str]) -> None:
    """Run ``cmd`` at low priority from the repository root, recording it in ``log``."""
    full = ["nice", "-n", "10"] + cmd
    log.append(" ".join(shlex.quote(c) for c in cmd))
    print("+", log[-1], flush=True)
    subprocess.run(full, cwd=REPO, check=True)


def run_parallel(jobs: list[tuple[list[str], bool]], log: list[str]) -> None:
    """Run the commands whose flag is set side by side at low priority; record all in ``log``."""
    procs = []
    for cmd, todo in jobs:
        log.append(" ".join(shlex.quote(c) for c in cmd))
        if todo:
            print("+", log[-1], flush=True)
            procs.append(subprocess.Popen(["nice", "-n", "10"] + cmd, cwd=REPO))
    if any(p.wait() != 0 for p in procs):
        raise SystemExit("a training run failed")


def main(argv: list[str] | None = None) -> int:
    """Run the demo pipeline."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--videos", type=int, default=1800)
    ap.add_argument("--seed", type=int, default=0, help="data seed")
    ap.add_argument("--train-seed", type=int, default=0)
    ap.add_argument("--epochs-global", type=int, default=12)
    ap.add_argument("--epochs-full", type=int, default=12)
    ap.add_argument("--data", type=Path, default=Path("data/synthetic"))
    ap.add_argument("--runs", type=Path, default=Path("runs/demo"))
    ap.add_argument("--out", type=Path, default=Path("models/demo"))
    ap.add_argument("--lr-continue", type=float, default=2e-4,
                    help="learning rate of stage 2 and of the global-only continuation")
    ap.add_argument("--head-lr", type=float, default=1e-3,
                    help="learning rate of the recurrent head in stage 2 (0 = --lr-continue)")
    ap.add_argument("--head-warmup", type=int, default=4,
                    help="stage-2 epochs in which only the new head learns")
    ap.add_argument("--keep-bn", action=argparse.BooleanOptionalAction, default=True,
                    help="stage 2 and the global-only continuation keep the stage-1 batch-norm "
                         "statistics (freeze_backbone_bn)")
    ap.add_argument("--grad-clip", type=float, default=5.0, help="for the same two runs")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--temporal-padding", choices=("causal", "symmetric"), default="causal",
                    help="backbone kind of the shipped model (causal streams frame by frame)")
    ap.add_argument("--compare-padding", action="store_true",
                    help="also train the other temporal padding on the same data and budget")
    args = ap.parse_args(argv)
    py = sys.executable if Path(sys.executable).is_absolute() else "python"
    py = str(Path(py).relative_to(REPO)) if Path(py).is_relative_to(REPO) else py
    commands: list[str] = []
    raw, prep = args.data / "raw", args.data / "prepared128"
    if not (REPO / raw / "synthetic.json").exists():
        run([py, "-m", "training.synthetic", "--out", str(raw), "--videos", str(args.videos),
             "--seed", str(args.seed), "--width", "160", "--height", "120", "--workers", "2"],
            commands)
    else:
        commands.append(f"{py} -m training.synthetic --out {raw} --videos {args.videos} --seed "
                        f"{args.seed} --width 160 --height 120 --workers 2")
    if not (REPO / prep / "index.json").exists():
        run([py, "-m", "training.ntu.prepare", "--videos", str(raw), "--out", str(prep),
             "--size", "128", "--labels", "config/labels/synthetic.txt", "--workers", "2",
             "--dataset", "synthetic"], commands)
    else:
        commands.append(f"{py} -m training.ntu.prepare --videos {raw} --out {prep} --size 128 "
                        f"--labels config/labels/synthetic.txt --workers 2 --dataset synthetic")
    base = [py, "training/train.py", "--config", "config/train/synthetic.yaml",
            f"data.root={prep}", f"seed={args.train_seed}", "progress=false"]
    e1, e2 = args.epochs_global, args.epochs_full
    cont = [f"optim.lr={args.lr_continue}", f"optim.grad_clip={args.grad_clip}",
            f"freeze_backbone_bn={str(args.keep_bn).lower()}"]
    arms = [(args.temporal_padding, args.runs)]
    if args.compare_padding:
        other = "symmetric" if args.temporal_padding == "causal" else "causal"
        arms.append((other, args.runs / other))
    # Stage 1 of every arm, then stage 2 of every arm (plus the global-only continuation), each
    # phase's runs side by side with one thread each.
    stage1_jobs, stage2_jobs = [], []
    for padding, runs in arms:
        arm = base + [f"model.temporal_padding={padding}", "threads=1"]
        g_dir, f_dir = runs / "global", runs / "full"
        stage1_jobs.append((arm + [f"out_dir={g_dir}", f"optim.epochs={e1}"],
                            not (REPO / g_dir / "model.safetensors").exists()))
        stage2_jobs.append((arm + ["stage=full", f"init={g_dir}/best.pt", f"out_dir={f_dir}",
                                   f"optim.epochs={e2}", f"optim.head_lr={args.head_lr}",
                                   f"optim.head_warmup_epochs={args.head_warmup}"] + cont,
                            not (REPO / f_dir / "model.safetensors").exists()))
    g_dir, f_dir, b_dir = args.runs / "global", args.runs / "full", args.runs / "global_only"
    run_parallel(stage1_jobs, commands)
    if not args.skip_baseline:
        # Same first e1 epochs as stage 1, then e2 more epochs of the global model alone.
        alone = (base + [f"model.temporal_padding={args.temporal_padding}", "threads=1",
                         f"out_dir={b_dir}", f"optim.epochs={e1 + e2}"] + cont + ["--resume"])
        todo = not (REPO / b_dir / "model.safetensors").exists()
        if todo:
            shutil.copytree(REPO / g_dir, REPO / b_dir, dirs_exist_ok=True)
            (REPO / b_dir / "model.safetensors").unlink(missing_ok=True)
        stage2_jobs.append((alone, todo))
    run_parallel(stage2_jobs, commands)
    write_artifacts(args, commands, g_dir, f_dir, b_dir)
    return 0


def write_artifacts(args: argparse.Namespace, commands: list[str], g_dir: Path, f_dir: Path,
                    b_dir: Path) -> None:
    """Copy the stage-2 model and write manifest.json and global_vs_full.json."""
    from glimpse_ros.model.checkpoint import read_metadata

    out = REPO / args.out
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO / f_dir / "model.safetensors", out / MODEL_NAME)
    meta = read_metadata(out / MODEL_NAME)
    full = json.loads((REPO / f_dir / "results.json").read_text())
    stage1 = json.loads((REPO / g_dir / "results.json").read_text())
    manifest = dict(
        model=MODEL_NAME, model_config=meta["model_config"], labels=meta["labels"],
        data=dict(generator="python -m training.synthetic", videos=args.videos,
                  seed=args.seed, size=[160, 120], prepared_size=128,
                  split="cross-subject (held-out synthetic subjects)"),
        commands=commands, reproduce=f"python -m training.demo --videos {args.videos} "
                                     f"--seed {args.seed} --epochs-global "
                                     f"{args.epochs_global} --epochs-full {args.epochs_full} "
                                     f"--lr-continue {args.lr_continue} "
                                     f"--head-lr {args.head_lr} "
                                     f"--head-warmup {args.head_warmup} "
                                     + ("" if args.keep_bn else "--no-keep-bn ") +
                                     f"--grad-clip {args.grad_clip} "
                                     f"--temporal-padding {args.temporal_padding}"
                                     + (" --compare-padding" if args.compare_padding else "")
                                     + (" --skip-baseline" if args.skip_baseline else ""),
        held_out=dict(top1=full["top1"], top5=full["top5"], samples=full["samples"],
                      per_class=dict(zip(meta["labels"], full["per_class"])), clips=5),
        stage1_global_model_held_out_top1=stage1["top1"], training=meta["extra"],
        size_bytes=(out / MODEL_NAME).stat().st_size)
    manifest["temporal_padding"] = args.temporal_padding
    if args.compare_padding:
        other = "symmetric" if args.temporal_padding == "causal" else "causal"
        other_full = json.loads((REPO / args.runs / other / "full" / "results.json").read_text())
        manifest["temporal_padding_comparison"] = {
            "setup": "same data, seed and budget (stage 1 then stage 2); held-out subjects",
            args.temporal_padding: dict(top1=full["top1"], top5=full["top5"]),
            other: dict(top1=other_full["top1"], top5=other_full["top5"])}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    if (REPO / b_dir / "results.json").exists():
        alone = json.loads((REPO / b_dir / "results.json").read_text())
        comparison = dict(
            setup=f"same data (seed {args.seed}), training seed {args.train_seed}, "
                  f"{args.epochs_global + args.epochs_full} epochs in total; the full model is "
                  f"{args.epochs_global} epochs of stage 1 followed by {args.epochs_full} of "
                  f"stage 2, the global model continues stage 1 for the same total; both "
                  f"continuations use lr {args.lr_continue} and gradient clipping "
                  f"{args.grad_clip}, the new recurrent head lr {args.head_lr} after "
                  f"{args.head_warmup} epochs of the head alone, batch-norm statistics "
                  f"{'kept from stage 1' if args.keep_bn else 'from each batch'}",
            global_model=dict(top1=alone["top1"], top5=alone["top5"]),
            glimpse_clouds=dict(top1=full["top1"], top5=full["top5"]),
            difference_top1=round(full["top1"] - alone["top1"], 2), samples=full["samples"],
            paper_difference_top1=dict(ntu=1.9, nucla=4.4),
            arguments={k: str(v) for k, v in vars(args).items()})
        (out / "global_vs_full.json").write_text(json.dumps(comparison, indent=1,
                                                            default=str) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
