"""Command line: ``python -m training.synthetic --out DIR --videos N --seed S [--scene S]``.

``--scene single`` (default): one figure per video. ``--scene distractor``: a small actor decides
the class while a second figure does another action and background shapes drift
(:mod:`training.synthetic.scene`).
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from tqdm import tqdm

from training.synthetic.actions import ACTION_NAMES
from training.synthetic.generator import sample_spec, write_sample
from training.synthetic.scene import sample_scene, write_scene

SCENES = {"single": (sample_spec, write_sample), "distractor": (sample_scene, write_scene)}


def main(argv: list[str] | None = None) -> int:
    """Generate the synthetic data set."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True, type=Path, help="output directory")
    ap.add_argument("--videos", type=int, required=True, help="number of videos")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--height", type=int, default=240)
    ap.add_argument("--frames", type=int, default=40, help="frames per video")
    ap.add_argument("--missing-skeleton-prob", type=float, default=0.02,
                    help="probability of an empty .skeleton file (as in NTU)")
    ap.add_argument("--workers", type=int, default=1, help="rendering processes")
    ap.add_argument("--scene", choices=tuple(SCENES), default="single",
                    help="single figure, or a small actor plus a distractor figure")
    args = ap.parse_args(argv)
    if args.videos < 1 or args.frames < 1 or args.width < 16 or args.height < 16:
        ap.error("--videos and --frames must be >= 1, --width/--height >= 16")
    args.out.mkdir(parents=True, exist_ok=True)
    # Specifications are drawn in order (names must be unique), rendering runs in parallel;
    # the output does not depend on --workers.
    sample, write = SCENES[args.scene]
    taken: set[str] = set()
    specs = []
    for i in range(args.videos):
        specs.append(sample(args.seed, i, (args.width, args.height), args.frames,
                            args.missing_skeleton_prob, taken))
        taken.add(specs[-1].name.stem)
    names = [s.name.stem for s in specs]
    with ProcessPoolExecutor(max_workers=max(1, args.workers)) as pool:
        jobs = [pool.submit(write, args.out, s) for s in specs]
        for job in tqdm(jobs, desc="synthetic", unit="video"):
            job.result()
    meta = dict(seed=args.seed, videos=args.videos, size=[args.width, args.height],
                frames=args.frames, labels=list(ACTION_NAMES), samples=names, scene=args.scene)
    (args.out / "synthetic.json").write_text(json.dumps(meta, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
