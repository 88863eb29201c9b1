"""Where the glimpses land: fraction of glimpse centres on the actor vs on the distractor.

For every held-out video (centre clip, centre crop, as evaluated) the model's glimpse centres are
compared with two boxes per frame in input-crop coordinates: the bounding box of the actor's
visible joints (body 0 of the ``.skeleton`` file, as the loader gives it to the losses) and that
of the distractor's joints (``<name>.distractor.npz`` next to the raw videos), each grown by
``margin`` on every side. Only frames where both figures have a visible joint count. The mean
box area (fraction of the crop) is what uniformly random centres would score.

:func:`pose_placement` scores stage 1's pose head the same way, as if its predicted joint
clusters were glimpses: a locator linear in the context vector, like the paper's eq. 3.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

from glimpse_ros.config import ModelConfig
from glimpse_ros.model.checkpoint import load_checkpoint
from training.config import TrainConfig
from training.dataset import ClipDataset, joints_to_crop, segment_indices
from training.oracle import glimpse_inputs, oracle_glimpses
from training.prepared import PreparedIndex, SampleInfo
from training.splits import split_samples
from training.synthetic.scene import distractor_path

MARGIN = 0.1        # box growth on each side, input-crop units (2 = the crop's width)


def figure_boxes(points: np.ndarray, visible: np.ndarray, margin: float = MARGIN
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame bounding boxes of a figure's visible joints.

    Args:
        points: (T, J, 2) joints in input-crop coordinates.
        visible: (T, J) bool.
        margin: growth on every side.

    Returns:
        (T, 4) boxes ``[x0, y0, x1, y1]`` and (T,) bool, False where no joint is visible.
    """
    big = np.where(visible[..., None], points, np.inf)        # (T, J, 2)
    small = np.where(visible[..., None], points, -np.inf)     # (T, J, 2)
    boxes = np.concatenate([big.min(1) - margin, small.max(1) + margin], axis=1)  # (T, 4)
    return boxes, visible.any(1)


def inside(centres: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(T, G) bool: glimpse centre ``(T, G, 2)`` lies in its frame's box ``(T, 4)``."""
    b = boxes[:, None, :]                                      # (T, 1, 4)
    return ((centres[..., 0] >= b[..., 0]) & (centres[..., 0] <= b[..., 2])
            & (centres[..., 1] >= b[..., 1]) & (centres[..., 1] <= b[..., 3]))


def box_area(boxes: np.ndarray) -> np.ndarray:
    """(T,) fraction of the crop ``[-1, 1]^2`` covered by each box (clipped to the crop)."""
    lo, hi = np.clip(boxes[:, :2], -1, 1), np.clip(boxes[:, 2:], -1, 1)
    return np.prod(np.maximum(hi - lo, 0.0), axis=1) / 4.0


def distractor_joints(raw: Path, s: SampleInfo, frames: int, resize: int, crop: int
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The distractor's (T, J, 2) crop coordinates and (T, J) mask for the centre test clip."""
    with np.load(distractor_path(raw, s.name)) as z:
        src = z["joints"]                                       # (frames, J, 2) source pixels
    idx = [min(i, len(src) - 1) for i in segment_indices(s.frames, frames, offset=0.5)]
    o = (resize - crop) // 2
    pts, mask = joints_to_crop(src[idx][:, None], np.ones((len(idx), 1), bool),
                               (s.width, s.height), resize, crop, (o, o))
    return pts[:, 0], mask[:, 0]


@torch.no_grad()
def glimpse_placement(model_path: Path, cfg: TrainConfig, raw: Path, example: Path | None = None,
                      batch_size: int = 8) -> dict:
    """Score where the model's glimpses land on the test split of ``cfg``.

    Args:
        model_path: exported ``model.safetensors`` of a run with the recurrent head.
        cfg: the run's training configuration (data root, split, seed).
        raw: folder of the raw synthetic videos (holds the distractor files).
        example: when given, write a PNG of the first test video's middle frame with the boxes.
        batch_size: clips per forward.

    Returns:
        ``actor``, ``distractor``: fractions of glimpse centres in each box; ``actor_area``,
        ``distractor_area``: mean box areas (chance level); ``glimpses``, ``videos``, ``margin``.
    """
    model = load_checkpoint(model_path).model

    def glimpses(video: torch.Tensor, truth: dict) -> torch.Tensor:
        given = glimpse_inputs(model, truth, torch.device("cpu"))  # oracle boxes, if any
        return model(video, **given).glimpses                      # (B, T, G, 4)

    return _placement(model.config, cfg, raw, glimpses, example, batch_size)


@torch.no_grad()
def pose_placement(model_path: Path, cfg: TrainConfig, raw: Path, batch_size: int = 8) -> dict:
    """Score the pose head as a locator: where eq. 13's regressed body 0 puts its joint clusters.

    The pose head is linear in the context vector ``c_t``, as the paper's glimpse locator
    (eq. 3) is in ``[h_g, c_t]``; boxes on the clusters of the *predicted* joints
    (``training/oracle.py``'s clusters) show how much of the actor's position ``c_t`` carries.
    Returns the same fields as :func:`glimpse_placement`.
    """
    model = load_checkpoint(model_path).model

    def glimpses(video: torch.Tensor, truth: dict) -> torch.Tensor:
        pose = model(video, global_only=True).pose                 # (B, T, bodies, J, 2)
        seen = torch.ones(pose.shape[:-1], dtype=torch.bool)
        return oracle_glimpses(pose, seen, model.config.num_glimpses)

    return _placement(model.config, cfg, raw, glimpses, None, batch_size)


def _placement(mcfg: ModelConfig, cfg: TrainConfig, raw: Path,
               glimpses_of: Callable[[torch.Tensor, dict], torch.Tensor],
               example: Path | None, batch_size: int) -> dict:
    """Fractions of the centres ``glimpses_of(video, truth)`` in the actor / distractor boxes."""
    index = PreparedIndex.load(cfg.data.root)
    _, _, test = split_samples(index.samples, cfg.data, cfg.seed)
    ds = ClipDataset(cfg.data.root, test, frames=mcfg.frames, resize=mcfg.resize_size,
                     crop=mcfg.crop_size, train=False, clips=1, num_joints=mcfg.num_joints,
                     seed=cfg.seed)
    hits = dict(actor=0, distractor=0)
    areas = dict(actor=[], distractor=[])
    total = 0
    for start in range(0, len(ds), batch_size):
        items = [ds[i] for i in range(start, min(start + batch_size, len(ds)))]
        video = torch.stack([it["video"] for it in items])          # (B, 3, T, c, c)
        truth = {k: torch.stack([it[k] for it in items]) for k in ("joints", "mask")}
        glimpses = glimpses_of(video, truth).numpy()                # (B, T, G, 4)
        for k, it in enumerate(items):
            s = ds.samples[start + k]
            actor, a_ok = figure_boxes(it["joints"][:, 0].numpy(), it["mask"][:, 0].numpy())
            other, o_ok = figure_boxes(*distractor_joints(raw, s, mcfg.frames,
                                                          mcfg.resize_size, mcfg.crop_size))
            ok = a_ok & o_ok                                        # (T,)
            centres = glimpses[k, ok, :, :2]                        # (T', G, 2)
            hits["actor"] += int(inside(centres, actor[ok]).sum())
            hits["distractor"] += int(inside(centres, other[ok]).sum())
            areas["actor"].extend(box_area(actor[ok]).tolist())
            areas["distractor"].extend(box_area(other[ok]).tolist())
            total += centres.shape[0] * centres.shape[1]
            if example is not None and start == 0 and k == 0:
                t = mcfg.frames // 2
                draw_example(example, it["video"][:, t].numpy(), glimpses[k, t], actor[t],
                             other[t])
    n = max(total, 1)
    return dict(actor=hits["actor"] / n, distractor=hits["distractor"] / n,
                actor_area=float(np.mean(areas["actor"])) if areas["actor"] else 0.0,
                distractor_area=float(np.mean(areas["distractor"])) if areas["distractor"]
                else 0.0, glimpses=total, videos=len(ds), margin=MARGIN)


def to_pixels(v: np.ndarray, size: int) -> np.ndarray:
    """Input-crop coordinates ``[-1, 1]`` to pixel positions of a ``size``-pixel crop."""
    return (np.asarray(v) + 1.0) * (size - 1) / 2.0


def draw_example(path: Path, frame: np.ndarray, glimpses: np.ndarray, actor: np.ndarray,
                 other: np.ndarray, scale: int = 3) -> None:
    """Write one frame with the actor box (green), distractor box (red) and glimpses (yellow).

    Args:
        path: PNG to write.
        frame: (3, c, c) ImageNet-normalised frame.
        glimpses: (G, 4) ``[x, y, sx, sy]``.
        actor: (4,) actor box ``[x0, y0, x1, y1]`` in input-crop coordinates.
        other: (4,) distractor box, same convention.
        scale: magnification.
    """
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    rgb = np.clip((frame.transpose(1, 2, 0) * std + mean) * 255.0, 0, 255).astype(np.uint8)
    size = rgb.shape[0]
    img = cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), None, fx=scale, fy=scale,
                     interpolation=cv2.INTER_NEAREST)
    for box, colour in ((actor, (0, 200, 0)), (other, (0, 0, 230))):
        if np.isfinite(box).all():
            p = (to_pixels(box, size) * scale).round().astype(int)
            cv2.rectangle(img, (p[0], p[1]), (p[2], p[3]), colour, 2)
    for x, y, sx, sy in glimpses:
        c = to_pixels(np.array([x, y]), size) * scale
        half = np.array([sx, sy]) * (size - 1) / 2.0 * scale
        cv2.rectangle(img, tuple((c - half).round().astype(int)),
                      tuple((c + half).round().astype(int)), (0, 220, 255), 1)
        cv2.circle(img, tuple(c.round().astype(int)), 4, (0, 220, 255), -1)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img)
