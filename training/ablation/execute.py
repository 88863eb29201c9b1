"""One ablation run: train through ``training/train.py``'s command line, then score glimpses.

A run is finished when its folder holds ``record.json`` (held-out accuracy, wall and CPU
seconds, glimpse placement, learning curve); a run whose training finished but whose scoring
did not only re-scores, and an interrupted training resumes from its ``last.pt``. The training
log goes to ``train.log``.
"""

from __future__ import annotations

import json
import logging
import resource
import time
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Iterator

from training.ablation.arms import Run, arm_by_key

RECORD = "record.json"


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and its finished children so far."""
    usage = (resource.getrusage(resource.RUSAGE_SELF),
             resource.getrusage(resource.RUSAGE_CHILDREN))
    return sum(r.ru_utime + r.ru_stime for r in usage)


@contextmanager
def captured(path: Path) -> Iterator[None]:
    """Send logging, stdout and stderr to ``path`` (appending) for the duration."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    with open(path, "a") as fh, redirect_stdout(fh), redirect_stderr(fh):
        handler = logging.StreamHandler(fh)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.handlers = [handler]
        root.setLevel(logging.INFO)
        try:
            yield
        finally:
            root.handlers, level = saved
            root.setLevel(level)


def learning_curve(path: Path) -> list[dict]:
    """Learning curve of a finished run, one entry per epoch.

    Train accuracy (%, over the epoch's batches, in train mode), validation top-1 (%, ``None``
    where not evaluated), the mean training loss and the seconds since training started.

    Args:
        path: the run's ``last.pt`` (its ``history``).
    """
    from training.checkpoints import load_model_weights

    _, info = load_model_weights(path, "cpu")
    curve = []
    for h in info.get("history", []):
        train, val = h.get("train", {}), h.get("val", {})
        curve.append(dict(epoch=int(h["epoch"]),
                          train_top1=round(100.0 * float(train.get("accuracy", float("nan"))), 2),
                          val_top1=val.get("top1"), loss=round(float(train.get("total", 0.0)), 4),
                          seconds=h.get("seconds")))
    return curve


def execute(run: Run, raw: Path) -> dict:
    """Train ``run`` unless done and return its record (also written to ``record.json``).

    Args:
        run: the run (its ``argv`` are ``train.py`` arguments: ``--config FILE key=value ...``).
        raw: folder of the raw synthetic videos (distractor joints for the placement score).

    Raises:
        RuntimeError: when training fails (see the run's ``train.log``).
    """
    from training.ablation.placement import glimpse_placement, pose_placement
    from training.config import load_train_config
    from training.train import main as train_main

    out = run.out_dir
    if (out / RECORD).exists():
        return json.loads((out / RECORD).read_text())
    out.mkdir(parents=True, exist_ok=True)
    t0, c0 = time.time(), cpu_seconds()
    argv = list(run.argv)
    if not (out / "model.safetensors").exists():
        if (out / "last.pt").exists():
            argv.append("--resume")
        with captured(out / "train.log"):
            try:
                status = train_main(argv)
            except Exception as err:  # noqa: BLE001 - re-raised with the log's name
                logging.getLogger("training").exception("training failed")
                raise RuntimeError(f"{run.key}: training failed ({err}); see "
                                   f"{out / 'train.log'}") from err
        if status != 0:
            raise RuntimeError(f"{run.key}: training exited with {status}; see "
                               f"{out / 'train.log'}")
    results = json.loads((out / "results.json").read_text())
    config = argv[argv.index("--config") + 1]
    cfg = load_train_config(config, [a for a in argv if "=" in a and not a.startswith("-")])
    record = dict(top1=results["top1"], top5=results["top5"], test_videos=results["samples"],
                  test_clips=cfg.data.test_clips, curve=learning_curve(out / "last.pt"))
    if run.arm == "stage1":
        record["pose_placement"] = pose_placement(out / "model.safetensors", cfg, raw)
    elif arm_by_key(run.arm).head:
        record["placement"] = glimpse_placement(out / "model.safetensors", cfg, raw,
                                                example=out / "placement.png")
    # CPU seconds do not depend on what else runs on the machine: with the runs' threads busy,
    # the wall time of a free machine is about their sum divided by the cores.
    record["seconds"] = round(time.time() - t0, 1)
    record["cpu_seconds"] = round(cpu_seconds() - c0, 1)
    (out / RECORD).write_text(json.dumps(record, indent=1) + "\n")
    return record
