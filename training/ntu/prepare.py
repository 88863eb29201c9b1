"""One-off NTU RGB+D preparation.

``python -m training.ntu.prepare --videos D --skeletons D --out D``

Rescales every ``*_rgb.avi`` to 256×256 (``--size``), parses its ``.skeleton`` and writes the
prepared format of :mod:`training.prepared`. Missing/empty skeletons are kept (pose losses masked)
and counted; unreadable videos or corrupt skeleton files are listed under ``errors``.
"""

from __future__ import annotations

import argparse
import json
import logging
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from tqdm import tqdm

from training.config import read_labels
from training.ntu.names import parse_name
from training.ntu.skeleton import SkeletonFormatError, read_skeleton
from training.prepared import PreparedIndex, SampleInfo, write_joints, write_rescaled

log = logging.getLogger(__name__)


def prepare_one(video: Path, skeleton_dir: Path | None, out: Path, size: int
                ) -> tuple[SampleInfo | None, dict | None, str]:
    """Prepare one sample; return (info or None, error or None, skeleton status)."""
    name = parse_name(video.name)
    try:
        n, w, h = write_rescaled(video, out / "videos" / f"{name.stem}.avi", size)
    except ValueError as err:
        return None, dict(name=name.stem, reason=f"video: {err}"), "n/a"
    status = "ok"
    has = False
    skel = (skeleton_dir / name.skeleton_name) if skeleton_dir else None
    if skel is None or not skel.exists():
        status = "missing"
    else:
        try:
            s = read_skeleton(skel)
        except SkeletonFormatError as err:
            status = f"corrupt: {err}"
        else:
            if s.num_frames == 0 or not s.present.any():
                status = "empty"
            else:
                write_joints(out / "joints" / f"{name.stem}.npz", s.joints, s.present)
                has = True
    info = SampleInfo(name=name.stem, label=name.label, frames=n, width=w, height=h,
                      subject=name.subject, camera=name.camera, has_joints=has)
    return info, None, status


def prepare(videos: Path, skeletons: Path | None, out: Path, size: int, labels: list[str],
            workers: int = 1, dataset: str = "ntu") -> PreparedIndex:
    """Prepare every ``*_rgb.avi`` under ``videos`` into ``out``; return the written index."""
    files = sorted(videos.rglob("*_rgb.avi"))
    if not files:
        raise ValueError(f"{videos}: no *_rgb.avi files")
    out.mkdir(parents=True, exist_ok=True)
    index = PreparedIndex(dataset=dataset, size=size, labels=labels)
    counts: dict[str, int] = {}
    named = []
    for f in files:
        try:
            parse_name(f.name)
        except ValueError as err:
            index.errors.append(dict(name=f.name, reason=f"video: {err}"))
            log.warning("skipping %s", index.errors[-1])
        else:
            named.append(f)
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        jobs = [pool.submit(prepare_one, f, skeletons, out, size) for f in named]
        for job in tqdm(jobs, desc="prepare", unit="video"):
            info, error, status = job.result()
            if error is not None:
                index.errors.append(error)
                log.warning("skipping %s", error)
                continue
            key = status.split(":")[0]
            counts[key] = counts.get(key, 0) + 1
            if key == "corrupt":
                index.errors.append(dict(name=info.name, reason=f"skeleton {status}"))
            index.samples.append(info)
    index.save(out)
    summary = dict(videos=len(files), prepared=len(index.samples), video_errors=sum(
        1 for e in index.errors if e["reason"].startswith("video")), skeletons=counts)
    log.info("prepared: %s", json.dumps(summary))
    print(json.dumps(summary))
    return index


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--videos", type=Path, required=True, help="folder with *_rgb.avi")
    ap.add_argument("--skeletons", type=Path, default=None, help="folder with *.skeleton")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--labels", type=Path, default=Path("config/labels/ntu60.txt"))
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--dataset", default="ntu", help="name stored in the index")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    labels = read_labels(args.labels)
    prepare(args.videos, args.skeletons or args.videos, args.out, args.size, labels,
            args.workers, args.dataset)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
