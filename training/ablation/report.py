"""Ablation report: per-arm mean ± std over seeds, the paper's rows, the sign checks, the figure.

``results`` (input of every function here) maps ``seed -> arm key -> run record`` where a run
record holds ``top1`` (held-out accuracy, %), ``seconds``, ``curve`` (per-epoch train and
validation accuracy, :func:`training.ablation.execute.learning_curve`) and, for arms with
glimpses, ``placement`` (see :mod:`training.ablation.placement`).
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from training.ablation.arms import ARMS, arm_by_key
from training.ablation.curves import curve_table

# The paper's claims on these rows (sign of full minus arm), Tables 3-4.
SIGN_CHECKS = ("global", "no_lg", "random", "context", "sum_gru")


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    if not values:
        return math.nan, math.nan
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def summarise(results: dict[int, dict[str, dict]]) -> dict[str, dict]:
    """Per arm: accuracies per seed, mean, std, and the placement fractions' mean/std."""
    out = {}
    for arm in ARMS:
        recs = [results[s][arm.key] for s in sorted(results) if arm.key in results[s]]
        if not recs:
            continue
        top1 = [r["top1"] for r in recs]
        row = dict(title=arm.title, losses=arm.losses, top1=top1, seeds=len(recs),
                   paper=arm.paper, paper_row=arm.paper_row)
        row["top1_mean"], row["top1_std"] = mean_std(top1)
        if arm.head and all("placement" in r for r in recs):
            for part in ("actor", "distractor", "actor_area", "distractor_area"):
                vals = [100.0 * r["placement"][part] for r in recs]
                row[f"{part}_mean"], row[f"{part}_std"] = mean_std(vals)
        curves = mean_curves([r.get("curve") or [] for r in recs])
        if curves:
            row["curve"] = curves
        out[arm.key] = row
    return out


def pose_summary(placements: list[dict | None]) -> dict[str, float]:
    """Mean/std (%) over seeds of stage 1's pose-head placement; ``{}`` when a seed lacks it."""
    if not placements or any(p is None for p in placements):
        return {}
    row: dict[str, float] = {"seeds": len(placements)}
    for part in ("actor", "distractor"):
        row[f"{part}_mean"], row[f"{part}_std"] = mean_std([100.0 * p[part]
                                                            for p in placements])
    return row


def mean_curves(curves: list[list[dict]]) -> dict[str, list]:
    """Per-epoch mean over seeds of ``train_top1`` and ``val_top1`` (epochs all seeds share).

    Returns ``{}`` when a seed has no curve; ``None`` where no seed has a validation value.
    """
    if not curves or any(not c for c in curves):
        return {}
    epochs = min(len(c) for c in curves)
    out: dict[str, list] = {"epoch": [c["epoch"] for c in curves[0][:epochs]]}
    for key in ("train_top1", "val_top1"):
        means = []
        for e in range(epochs):
            vals = [c[e][key] for c in curves if c[e].get(key) is not None]
            means.append(round(float(np.mean(vals)), 2) if vals else None)
        out[key] = means
    return out


def sign_checks(results: dict[int, dict[str, dict]]) -> dict[str, dict]:
    """For each claim "full > arm": mean difference, seeds where it holds, and the verdict."""
    checks = {}
    for key in SIGN_CHECKS:
        pairs = [(results[s]["full"]["top1"], results[s][key]["top1"]) for s in sorted(results)
                 if "full" in results[s] and key in results[s]]
        if not pairs:
            continue
        diff = [f - o for f, o in pairs]
        paper, full = arm_by_key(key).paper, arm_by_key("full").paper
        checks[f"full_vs_{key}"] = dict(
            difference_mean=float(np.mean(diff)), difference_per_seed=diff,
            seeds_holding=int(sum(d > 0 for d in diff)), seeds=len(diff),
            holds=bool(np.mean(diff) > 0),
            paper_difference={p: round(full[p] - v, 1) for p, v in paper.items()})
    return checks


def _signed(value: float | None) -> str:
    """``+1.1`` / ``-6.3``, or ``-`` where the paper has no such row."""
    return "-" if value is None else f"{value:+}"


def _pm(mean: float, std: float) -> str:
    return "-" if math.isnan(mean) else f"{mean:.1f} ± {std:.1f}"


def markdown(summary: dict[str, dict], checks: dict[str, dict], setup: dict,
             pose: dict[str, float] | None = None) -> str:
    """The results table (ours next to the paper's) and the sign checks, as Markdown."""
    lines = [f"Synthetic distractor scene, held-out subjects ({setup['test_videos']} videos, "
             f"{setup['test_clips']} clips each), mean ± std over {setup['seeds']} seed(s); "
             f"the paper's numbers are NTU RGB+D 60 (cross-subject / cross-view).", "",
             "| arm | losses | top-1 % (ours) | glimpses on actor % | on distractor % | "
             "paper CS % | paper CV % | paper row |",
             "|---|---|---|---|---|---|---|---|"]
    for key, row in summary.items():
        if "actor_mean" in row:
            actor = (f"{_pm(row['actor_mean'], row['actor_std'])} "
                     f"(box {row['actor_area_mean']:.0f})")
            other = (f"{_pm(row['distractor_mean'], row['distractor_std'])} "
                     f"(box {row['distractor_area_mean']:.0f})")
        else:
            actor = other = "-"
        paper = row["paper"]
        lines.append(f"| {row['title']} | {row['losses']} | "
                     f"{_pm(row['top1_mean'], row['top1_std'])} | {actor} | {other} | "
                     f"{paper.get('cs', '-')} | {paper.get('cv', '-')} | {row['paper_row']} |")
    lines += ["", "(box N): mean area of that figure's box, % of the crop: the share uniformly "
              "random glimpse centres would land in it."]
    if pose:
        lines += ["", "Stage 1's pose head read as a locator (eq. 13 is linear in the context "
                  "vector c_t, as the paper's eq. 3 locator is in [h, c_t]): boxes on its "
                  "predicted body's joint clusters land on the actor "
                  f"{_pm(pose['actor_mean'], pose['actor_std'])} % and on the distractor "
                  f"{_pm(pose['distractor_mean'], pose['distractor_std'])} % of the time."]
    lines += ["",
              "| paper's claim | ours: difference (points) | seeds where it holds | "
              "paper CS / CV difference |", "|---|---|---|---|"]
    for name, c in checks.items():
        arm = name.removeprefix("full_vs_")
        paper = c["paper_difference"]
        lines.append(f"| full > {arm_by_key(arm).title} | {c['difference_mean']:+.1f} "
                     f"({'holds' if c['holds'] else 'does not hold'}) | "
                     f"{c['seeds_holding']}/{c['seeds']} | "
                     f"{_signed(paper.get('cs'))} / {_signed(paper.get('cv'))} |")
    curves = curve_table(summary)
    if curves:
        lines += [""] + curves
    return "\n".join(lines) + "\n"


def placement_png(summary: dict[str, dict], path: Path, examples: dict[str, Path]) -> None:
    """Bar chart of glimpse centres on the actor / distractor per arm, plus example frames.

    Args:
        summary: output of :func:`summarise`.
        path: PNG to write.
        examples: arm key -> example frame PNG (``placement.draw_example``) to tile below.
    """
    rows = [(k, r) for k, r in summary.items() if "actor_mean" in r]
    width, bar_h, left = 900, 18, 260
    height = 70 + len(rows) * (2 * bar_h + 26) + 40
    img = np.full((height, width, 3), 255, np.uint8)
    font, black = cv2.FONT_HERSHEY_SIMPLEX, (0, 0, 0)
    cv2.putText(img, "glimpse centres inside the actor's / distractor's box, % of all glimpses "
                "(mean, bar = std over seeds)", (10, 22), font, 0.45, black, 1, cv2.LINE_AA)
    cv2.putText(img, "black tick: box area = chance level of uniformly random centres; frames: "
                "actor box green, distractor red, glimpses yellow", (10, 42), font, 0.4, black,
                1, cv2.LINE_AA)
    scale = (width - left - 120) / 100.0
    y = 60
    for _, row in rows:
        cv2.putText(img, row["title"], (10, y + bar_h + 4), font, 0.45, black, 1, cv2.LINE_AA)
        for part, colour in (("actor", (0, 160, 0)), ("distractor", (0, 0, 210))):
            m, s, area = row[f"{part}_mean"], row[f"{part}_std"], row[f"{part}_area_mean"]
            x1 = left + int(round(m * scale))
            cv2.rectangle(img, (left, y + 2), (max(x1, left + 1), y + bar_h - 3), colour, -1)
            lo = left + int(round(max(m - s, 0.0) * scale))
            hi = left + int(round(min(m + s, 100.0) * scale))
            cv2.line(img, (lo, y + bar_h // 2), (hi, y + bar_h // 2), (90, 90, 90), 1)
            xa = left + int(round(area * scale))
            cv2.line(img, (xa, y), (xa, y + bar_h), black, 2)
            cv2.putText(img, f"{part} {m:.0f}%", (max(x1, hi, xa) + 6, y + bar_h - 5), font, 0.4,
                        black, 1, cv2.LINE_AA)
            y += bar_h
        y += 26
    for tick in range(0, 101, 25):
        x = left + int(round(tick * scale))
        cv2.line(img, (x, y - 16), (x, y - 10), black, 1)
        cv2.putText(img, f"{tick}%", (x - 12, y + 4), font, 0.4, black, 1, cv2.LINE_AA)
    cv2.line(img, (left, y - 16), (left + int(round(100 * scale)), y - 16), black, 1)
    tiles = []
    for key, p in examples.items():
        tile = cv2.imread(str(p))
        if tile is None:
            continue
        tile = cv2.copyMakeBorder(tile, 22, 4, 4, 4, cv2.BORDER_CONSTANT, value=(255, 255, 255))
        cv2.putText(tile, arm_by_key(key).title, (4, 16), font, 0.45, (0, 0, 0), 1,
                    cv2.LINE_AA)
        tiles.append(tile)
    if tiles:
        h = max(t.shape[0] for t in tiles)
        strip = np.concatenate([cv2.copyMakeBorder(t, 0, h - t.shape[0], 0, 0,
                                                   cv2.BORDER_CONSTANT, value=(255, 255, 255))
                                for t in tiles], axis=1)
        if strip.shape[1] > width:
            strip = cv2.resize(strip, (width, int(strip.shape[0] * width / strip.shape[1])))
        strip = cv2.copyMakeBorder(strip, 0, 0, 0, width - strip.shape[1], cv2.BORDER_CONSTANT,
                                   value=(255, 255, 255))
        img = np.concatenate([img, strip], axis=0)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), img):
        raise ValueError(f"{path}: cannot write PNG")
