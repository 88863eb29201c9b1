"""Learning curves of the ablation arms: a Markdown table and ``curves.png``.

Input: the ``summary`` of :func:`training.ablation.report.summarise`, whose rows carry
``curve = {"epoch": [...], "train_top1": [...], "val_top1": [...]}`` (means over seeds, %).
Train accuracy is measured in train mode over each epoch's batches (augmented clips, the model
changing during the epoch); validation is the held-out-subject validation split, centre clip.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

# One BGR colour per arm, in the order of the summary (cycled beyond).
COLOURS = ((0, 0, 0), (0, 0, 200), (0, 150, 0), (200, 0, 0), (0, 140, 230), (160, 0, 160),
           (120, 120, 0), (0, 90, 160), (200, 120, 120))


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def curve_table(summary: dict[str, dict]) -> list[str]:
    """Markdown lines: one row per arm, ``train / val`` top-1 per epoch (empty without curves)."""
    rows = [(k, r) for k, r in summary.items() if r.get("curve")]
    if not rows:
        return []
    epochs = max(len(r["curve"]["epoch"]) for _, r in rows)
    lines = ["Learning curves (mean over seeds): train / validation top-1 % per epoch "
             "(train: in train mode over the epoch's batches); drawn in curves.png.", "",
             "| arm | " + " | ".join(f"epoch {e + 1}" for e in range(epochs)) + " |",
             "|---|" + "---|" * epochs]
    for _, row in rows:
        c = row["curve"]
        cells = [f"{_cell(t)} / {_cell(v)}" for t, v in zip(c["train_top1"], c["val_top1"])]
        cells += ["-"] * (epochs - len(cells))
        lines.append(f"| {row['title']} | " + " | ".join(cells) + " |")
    return lines


def _panel(rows: list[tuple[str, dict]], key: str, title: str, size: tuple[int, int],
           epochs: int) -> np.ndarray:
    """One plot: ``key`` (train_top1 / val_top1) of every arm against the epoch."""
    width, height = size
    img = np.full((height, width, 3), 255, np.uint8)
    font, black = cv2.FONT_HERSHEY_SIMPLEX, (0, 0, 0)
    left, right, top, bottom = 45, 10, 30, 30
    cv2.putText(img, title, (left, 20), font, 0.5, black, 1, cv2.LINE_AA)

    def xy(epoch: int, value: float) -> tuple[int, int]:
        fx = epoch / max(epochs - 1, 1)
        return (int(round(left + fx * (width - left - right))),
                int(round(height - bottom - value / 100.0 * (height - top - bottom))))

    for tick in range(0, 101, 20):
        x0, y = xy(0, tick)
        cv2.line(img, (x0, y), (width - right, y), (225, 225, 225), 1)
        cv2.putText(img, f"{tick}", (8, y + 4), font, 0.4, black, 1, cv2.LINE_AA)
    for e in range(epochs):
        x, y = xy(e, 0.0)
        cv2.putText(img, f"{e + 1}", (x - 4, y + 16), font, 0.4, black, 1, cv2.LINE_AA)
    for i, (_, row) in enumerate(rows):
        colour = COLOURS[i % len(COLOURS)]
        pts = [xy(e, v) for e, v in enumerate(row["curve"][key]) if v is not None]
        for a, b in zip(pts, pts[1:]):
            cv2.line(img, a, b, colour, 2, cv2.LINE_AA)
        for p in pts:
            cv2.circle(img, p, 3, colour, -1)
    return img


def curves_png(summary: dict[str, dict], path: Path) -> None:
    """Write train (left) and validation (right) top-1 per epoch of every arm, with a legend."""
    rows = [(k, r) for k, r in summary.items() if r.get("curve")]
    epochs = max([len(r["curve"]["epoch"]) for _, r in rows] + [1])
    panels = np.concatenate([
        _panel(rows, "train_top1", "train top-1 % (train mode, mean over seeds)", (450, 300),
               epochs),
        _panel(rows, "val_top1", "validation top-1 % (mean over seeds)", (450, 300), epochs)],
        axis=1)
    legend = np.full((22 * ((len(rows) + 1) // 2) + 30, 900, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(legend, "x: epoch after stage 1 (the stage-1 curve is in ablation.json)",
                (10, 16), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    for i, (_, row) in enumerate(rows):
        x, y = 10 + 450 * (i % 2), 38 + 22 * (i // 2)
        colour = COLOURS[i % len(COLOURS)]
        cv2.line(legend, (x, y - 4), (x + 30, y - 4), colour, 2)
        cv2.putText(legend, row["title"], (x + 38, y), font, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    img = np.concatenate([panels, legend], axis=0)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), img):
        raise ValueError(f"{path}: cannot write PNG")


__all__ = ["COLOURS", "curve_table", "curves_png"]
