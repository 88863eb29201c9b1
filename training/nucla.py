"""Northwestern-UCLA Multiview Action 3D (N-UCLA) in its distributed layout (DESIGN §5).

Layout: ``<root>/view_<v>/a<aa>_s<ss>_e<ee>/frame_<k>_tc_<stamp>_rgb.jpg`` (plus ``_depth.png`` and
``_skeletons.txt`` files we do not use). Ten actions (a01–a06, a08, a09, a11, a12), ten subjects,
three Kinect v1 views; protocol ``v3_12`` trains on views 1 and 2 and tests on view 3, etc.

Departure: N-UCLA skeletons are 3D Kinect v1 joints (20, not 25) without colour-image coordinates,
so no pose targets are produced and L_P is masked out on this data set (the paper does not say how
it handled pose on N-UCLA).

``python -m training.nucla --root D --out D`` writes the prepared format of
:mod:`training.prepared`.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from tqdm import tqdm

import cv2

from training.config import read_labels
from training.prepared import PreparedIndex, SampleInfo, write_rescaled_frames

ACTION_IDS = (1, 2, 3, 4, 5, 6, 8, 9, 11, 12)
PROTOCOLS = {"v3_12": (3, (1, 2)), "v2_13": (2, (1, 3)), "v1_23": (1, (2, 3))}
_SAMPLE = re.compile(r"a(\d\d)_s(\d\d)_e(\d\d)$")
_FRAME = re.compile(r"frame_(\d+)_tc_(\d+)_rgb\.jpg$")


def parse_sample_dir(path: Path) -> tuple[int, int, int, int]:
    """Return (label, subject, episode, view) of ``.../view_<v>/a<aa>_s<ss>_e<ee>``."""
    m = _SAMPLE.search(path.name)
    v = re.fullmatch(r"view_(\d)", path.parent.name)
    if m is None or v is None:
        raise ValueError(f"{path}: not an N-UCLA sample folder (view_<v>/a<aa>_s<ss>_e<ee>)")
    action, subject, episode = (int(x) for x in m.groups())
    if action not in ACTION_IDS:
        raise ValueError(f"{path}: unknown N-UCLA action a{action:02d}")
    return ACTION_IDS.index(action), subject, episode, int(v.group(1))


def frame_files(sample: Path) -> list[Path]:
    """RGB frames of a sample folder in frame order."""
    found = [(int(m.group(1)), p) for p in sample.iterdir() if (m := _FRAME.search(p.name))]
    return [p for _, p in sorted(found)]


def _read_jpg(path: Path):
    """Decode one RGB frame; ``ValueError`` when unreadable."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"{path}: cannot decode image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def is_train(view: int, protocol: str) -> bool:
    """True when a sample of ``view`` is on the training side of ``protocol``."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown N-UCLA protocol {protocol!r} (known: {', '.join(PROTOCOLS)})")
    return view in PROTOCOLS[protocol][1]


def prepare(root: Path, out: Path, size: int, labels: list[str]) -> PreparedIndex:
    """Prepare every sample folder under ``root``; unreadable ones are listed in ``errors``."""
    samples = sorted(p for p in root.glob("view_*/*") if p.is_dir())
    if not samples:
        raise ValueError(f"{root}: no view_<v>/a<aa>_s<ss>_e<ee> folders")
    index = PreparedIndex(dataset="nucla", size=size, labels=labels)
    for sample in tqdm(samples, desc="prepare", unit="video"):
        name = f"v{sample.parent.name[-1]}_{sample.name}"
        try:
            label, subject, _, view = parse_sample_dir(sample)
            files = frame_files(sample)
            if not files:
                raise ValueError(f"{sample}: no *_rgb.jpg frames")
            frames = [_read_jpg(f) for f in files]
            n, w, h = write_rescaled_frames(frames, out / "videos" / f"{name}.avi", size)
        except ValueError as err:
            index.errors.append(dict(name=name, reason=str(err)))
            continue
        index.samples.append(SampleInfo(name=name, label=label, frames=n, width=w, height=h,
                                        subject=subject, camera=view, has_joints=False))
    index.save(out)
    print(json.dumps(dict(folders=len(samples), prepared=len(index.samples),
                          errors=len(index.errors))))
    return index


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--root", type=Path, required=True, help="folder holding view_1..view_3")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--labels", type=Path, default=Path("config/labels/nucla10.txt"))
    args = ap.parse_args(argv)
    labels = read_labels(args.labels)
    prepare(args.root, args.out, args.size, labels)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
