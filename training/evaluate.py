"""Evaluation: multi-clip averaging, top-1/5, per-class accuracy, confusion matrix, paper table.

``python training/evaluate.py --checkpoint runs/x/model.safetensors --config config/train/X.yaml``
evaluates an exported model on the test split (5 averaged clips per video by default) and writes
``results.json``, ``results.md`` and ``confusion.png`` into ``--out``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.distributed import all_gather_objects, is_main  # noqa: E402
from training.oracle import glimpse_inputs  # noqa: E402

# Paper numbers (accuracy %, Baradel et al. 2018, Tables 1-3) per data set / protocol.
PAPER = {
    ("ntu", "cs"): {"glimpse_clouds": 86.6, "global_model": 84.5, "global_model_pose": 85.5},
    ("ntu", "cv"): {"glimpse_clouds": 93.2, "global_model": 91.5, "global_model_pose": 92.1},
    ("nucla", "v3_12"): {"glimpse_clouds": 90.1, "global_model": 85.6},
    ("nucla", "v2_13"): {"glimpse_clouds": 89.5, "global_model": 84.7},
    ("nucla", "v1_23"): {"glimpse_clouds": 83.4, "global_model": 79.2},
}


@torch.no_grad()
def predict(model: torch.nn.Module, loader, device: torch.device, global_only: bool,
            progress: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clip-averaged logits of every sample, gathered over ranks.

    Batches may carry several clips per video, ``video`` (B, clips, 3, T, H, W); their logits are
    averaged (paper: 5 sub-sequences at test).

    Returns:
        (logits (S, N), labels (S,), dataset indices (S,)) sorted by index, duplicates (from a
        padded DistributedSampler) removed.
    """
    model.eval()
    rows = []
    it = tqdm(loader, desc="eval", leave=False, disable=not (progress and is_main()))
    for batch in it:
        video = batch["video"].to(device, non_blocking=True)
        clips = 1
        if video.dim() == 6:
            b, clips = video.shape[:2]
            video = video.flatten(0, 1)                                    # (B*clips, 3, T, H, W)
        with torch.autocast(device.type, enabled=device.type == "cuda"):
            out = model(video, global_only=global_only, **glimpse_inputs(model, batch, device))
        logits = out.logits.float().view(-1, clips, out.logits.shape[-1]).mean(1)   # (B, N)
        rows.append((logits.cpu().numpy(), batch["label"].numpy(), batch["index"].numpy()))
    parts = all_gather_objects(rows)
    logits = np.concatenate([r[0] for p in parts for r in p])
    labels = np.concatenate([r[1] for p in parts for r in p])
    index = np.concatenate([r[2] for p in parts for r in p])
    index, first = np.unique(index, return_index=True)
    return logits[first], labels[first], index


def metrics(logits: np.ndarray, labels: np.ndarray, num_classes: int) -> dict:
    """Top-1/top-5 accuracy (%), per-class accuracy and the confusion matrix (rows = truth)."""
    if len(labels) == 0:
        raise ValueError("no predictions to score")
    pred = logits.argmax(1)
    k = min(5, logits.shape[1])
    top5 = (np.argsort(-logits, axis=1)[:, :k] == labels[:, None]).any(1)
    conf = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(conf, (labels, pred), 1)
    support = conf.sum(1)
    per_class = np.where(support > 0, np.diag(conf) / np.maximum(support, 1), np.nan)
    return dict(top1=float(100.0 * (pred == labels).mean()), top5=float(100.0 * top5.mean()),
                samples=int(len(labels)), per_class=[None if np.isnan(v) else float(100 * v)
                                                     for v in per_class],
                confusion=conf.tolist())


def confusion_png(conf: np.ndarray, labels: list[str], path: str | Path, cell: int = 0) -> None:
    """Draw a row-normalised confusion matrix with OpenCV (rows = truth, columns = prediction)."""
    n = conf.shape[0]
    cell = cell or max(8, min(48, 900 // max(n, 1)))
    margin = 12 + 7 * max(len(s) for s in labels) if n <= 20 else 40
    rows = conf / np.maximum(conf.sum(1, keepdims=True), 1)
    img = np.full((margin + n * cell + 10, margin + n * cell + 10, 3), 255, np.uint8)
    for i in range(n):
        for j in range(n):
            shade = int(255 * (1.0 - rows[i, j]))
            x0, y0 = margin + j * cell, margin + i * cell
            img[y0:y0 + cell, x0:x0 + cell] = (255, shade, shade)
            if n <= 20 and conf[i, j]:
                ink = (255, 255, 255) if shade < 128 else (0, 0, 0)
                cv2.putText(img, str(conf[i, j]), (x0 + 2, y0 + cell // 2 + 4),
                            cv2.FONT_HERSHEY_SIMPLEX, 0.35, ink, 1, cv2.LINE_AA)
        if n <= 20:
            cv2.putText(img, labels[i][:24], (2, margin + i * cell + cell // 2 + 4),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
            cv2.putText(img, str(i), (margin + i * cell + cell // 3, margin - 4),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "rows: truth, columns: prediction", (2, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                (0, 0, 0), 1, cv2.LINE_AA)
    if not cv2.imwrite(str(path), img):
        raise ValueError(f"{path}: cannot write PNG")


def results_table(result: dict, dataset: str, protocol: str, model_name: str) -> str:
    """Markdown table of our numbers next to the paper's."""
    lines = ["| model | data | protocol | top-1 % | top-5 % | paper % |",
             "|---|---|---|---|---|---|"]
    paper = PAPER.get((dataset, protocol), {})
    ref = paper.get(model_name)
    lines.append(f"| {model_name} | {dataset} | {protocol} | {result['top1']:.1f} | "
                 f"{result['top5']:.1f} | {'-' if ref is None else f'{ref:.1f}'} |")
    for name, value in paper.items():
        if name != model_name:
            lines.append(f"| {name} (paper) | {dataset} | {protocol} | | | {value:.1f} |")
    return "\n".join(lines) + "\n"


def write_report(result: dict, labels: list[str], out: Path, dataset: str, protocol: str,
                 model_name: str) -> None:
    """Write results.json, results.md (table + per-class accuracy) and confusion.png."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(dict(result, labels=labels, dataset=dataset,
                                                      protocol=protocol, model=model_name),
                                                 indent=1))
    md = results_table(result, dataset, protocol, model_name)
    md += "\n| class | accuracy % |\n|---|---|\n"
    md += "".join(f"| {name} | {'-' if acc is None else f'{acc:.1f}'} |\n"
                  for name, acc in zip(labels, result["per_class"]))
    (out / "results.md").write_text(md)
    confusion_png(np.array(result["confusion"]), labels, out / "confusion.png")


def main(argv: list[str] | None = None) -> int:
    """Evaluate an exported ``.safetensors`` model on a config's test split."""
    import argparse

    from glimpse_ros.model.checkpoint import load_checkpoint
    from training.loaders import build_datasets, make_loader, setup_logging

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--checkpoint", required=True, type=Path)
    ap.add_argument("--config", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--global-only", action="store_true", help="score the global classifier")
    ap.add_argument("overrides", nargs="*", help="key=value config overrides")
    args = ap.parse_args(argv)
    from training.config import load_train_config, read_labels
    setup_logging()
    cfg = load_train_config(args.config, args.overrides)
    loaded = load_checkpoint(args.checkpoint)
    expected = read_labels(cfg.data.labels)
    if list(loaded.labels) != expected:
        raise ValueError(f"{args.checkpoint}: label names differ from {cfg.data.labels} "
                         f"({len(loaded.labels)} vs {len(expected)} classes or another order)")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = loaded.model.to(device)
    data = build_datasets(cfg, loaded.config)
    loader = make_loader(data["test"], cfg, train=False)
    logits, labels, _ = predict(model, loader, device, args.global_only, cfg.progress)
    result = metrics(logits, labels, loaded.config.num_classes)
    out = args.out or args.checkpoint.parent / "eval"
    name = "global_model" if args.global_only else "glimpse_clouds"
    write_report(result, loaded.labels, out, cfg.data.dataset, cfg.data.protocol, name)
    print(results_table(result, cfg.data.dataset, cfg.data.protocol, name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
