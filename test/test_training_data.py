"""Synthetic generator, NTU and N-UCLA preparation, corrupt-file reporting, clip dataset."""

from __future__ import annotations

import hashlib

import cv2
import numpy as np
import pytest
import torch

from glimpse_ros.preprocess import glimpse_box_pixels
from training import nucla
from training.config import DataConfig, load_train_config
from training.dataset import ClipDataset, joints_to_crop, segment_indices
from training.loaders import make_loader
from training.ntu.prepare import prepare
from training.ntu.skeleton import read_skeleton
from training.prepared import PreparedIndex
from training.splits import split_samples
from training.synthetic.__main__ import main as synth_main
from training.synthetic.actions import ACTION_NAMES
from training.synthetic.generator import render, sample_spec
from training_fixtures import write_nucla_tree


def _digest(folder) -> dict[str, str]:
    """Hash of every video and skeleton file in a folder."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.suffix in (".avi", ".skeleton")}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """Nine small synthetic videos (one per action), prepared at 40 px."""
    root = tmp_path_factory.mktemp("syn")
    args = ["--videos", "9", "--seed", "5", "--width", "80", "--height", "60", "--frames", "10",
            "--missing-skeleton-prob", "0.0"]
    assert synth_main(["--out", str(root / "a")] + args) == 0
    out = root / "prep"
    prepare(root / "a", root / "a", out, 40, list(ACTION_NAMES), workers=1, dataset="synthetic")
    return root


def test_generator_is_deterministic(synthetic, tmp_path):
    """Generator is deterministic."""
    args = ["--videos", "9", "--seed", "5", "--width", "80", "--height", "60", "--frames", "10",
            "--missing-skeleton-prob", "0.0"]
    assert synth_main(["--out", str(tmp_path)] + args) == 0
    first, second = _digest(synthetic / "a"), _digest(tmp_path)
    assert len(first) == 18 and first == second
    other = sample_spec(6, 0, (80, 60), 10, 0.0)
    assert other != sample_spec(5, 0, (80, 60), 10, 0.0)


def test_generator_names_are_unique():
    """Generator names are unique."""
    taken: set[str] = set()
    for i in range(900):       # 100 per action: random names would collide
        taken.add(sample_spec(0, i, (80, 60), 10, 0.0, taken).name.stem)
    assert len(taken) == 900


def test_generator_classes_and_round_trip(synthetic):
    """Generator classes and round trip."""
    index = PreparedIndex.load(synthetic / "prep")
    assert sorted(s.label for s in index.samples) == list(range(9)) and not index.errors
    s = index.samples[0]
    assert (s.width, s.height, s.frames) == (80, 60, 10) and s.has_joints
    # The skeleton file holds the renderer's joints in the video's pixel coordinates.
    spec = next(sample_spec(5, i, (80, 60), 10, 0.0) for i in range(9)
                if sample_spec(5, i, (80, 60), 10, 0.0).name.stem == s.name)
    frames, joints, _ = render(spec)
    skel = read_skeleton(synthetic / "a" / spec.name.skeleton_name)
    np.testing.assert_allclose(skel.joints[:, 0], joints, atol=1e-3)
    assert skel.present[:, 0].all() and not skel.present[:, 1].any()
    cap = cv2.VideoCapture(str(synthetic / "a" / spec.name.video_name))
    ok, bgr = cap.read()
    assert ok and bgr.shape == (60, 80, 3)
    # MJPG is lossy: decoded frames stay close to the rendered ones.
    assert np.abs(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(int) - frames[0]).mean() < 12


def test_dataset_items_and_joint_convention(synthetic):
    """Dataset items and joint convention."""
    index = PreparedIndex.load(synthetic / "prep")
    root = synthetic / "prep"
    ds = ClipDataset(root, index.samples, frames=4, resize=40, crop=32, train=True)
    item = ds[0]
    assert item["video"].shape == (3, 4, 32, 32) and item["joints"].shape == (4, 2, 25, 2)
    assert item["mask"].shape == (4, 2, 25) and item["mask"][:, 1].sum() == 0
    assert item["mask"][:, 0].any()
    test = ClipDataset(root, index.samples, frames=4, resize=40, crop=32, train=False, clips=5)
    assert test[0]["video"].shape == (5, 3, 4, 32, 32)
    # Centre-crop joints mapped back with the runtime's glimpse_box_pixels land on the source.
    src = np.array([[[[10.0, 20.0], [70.0, 41.0]], [[0.0, 0.0], [0.0, 0.0]]]])  # (1, 2, 2, 2)
    norm, mask = joints_to_crop(src, np.array([[True, False]]), (80, 60), 40, 32, (4, 4))
    assert mask.tolist() == [[[True, True], [False, False]]]
    g = np.concatenate([norm[0, 0], np.zeros((2, 2))], axis=1)          # zero-size glimpses
    back = glimpse_box_pixels(g, (60, 80), resize=40, crop=32)[:, :2]
    np.testing.assert_allclose(back, src[0, 0], atol=1e-6)


def test_segment_sampling():
    """Segment sampling."""
    assert segment_indices(80, 8, offset=0.5) == [5, 15, 25, 35, 45, 55, 65, 75]
    rng = np.random.default_rng(0)
    idx = segment_indices(80, 8, rng)
    assert all(10 * k <= i < 10 * (k + 1) for k, i in enumerate(idx))
    assert segment_indices(3, 8, offset=0.5) == [0, 0, 0, 1, 1, 2, 2, 2]


def test_corrupt_and_missing_files_are_reported(synthetic, tmp_path):
    """Corrupt and missing files are reported."""
    src = tmp_path / "src"
    src.mkdir()
    for p in (synthetic / "a").iterdir():
        if p.suffix in (".avi", ".skeleton"):
            (src / p.name).write_bytes(p.read_bytes())
    videos = sorted(src.glob("*_rgb.avi"))
    videos[0].write_bytes(b"not a video")
    (src / videos[1].name.replace("_rgb.avi", ".skeleton")).unlink()
    (src / videos[2].name.replace("_rgb.avi", ".skeleton")).write_text("3\n1\nbroken")
    (src / "holiday_rgb.avi").write_bytes(videos[3].read_bytes())     # not an NTU name
    index = prepare(src, src, tmp_path / "out", 40, list(ACTION_NAMES), workers=1)
    assert len(index.samples) == 8
    reasons = " ".join(e["reason"] for e in index.errors)
    assert "video" in reasons and "corrupt" in reasons and len(index.errors) == 3
    assert "not an NTU sample name" in reasons
    missing = [s for s in index.samples if not s.has_joints]
    assert len(missing) == 2                      # missing + corrupt skeleton: pose masked
    (tmp_path / "out" / "videos" / f"{index.samples[0].name}.avi").unlink()
    ds = ClipDataset(tmp_path / "out", index.samples, frames=4, resize=40, crop=32)
    assert len(ds) == 7 and ds.missing == [index.samples[0].name]


def test_nucla_layout_prepare_and_protocols(tmp_path):
    """Nucla layout prepare and protocols."""
    root = write_nucla_tree(tmp_path / "multiview_action")
    (root / "view_3" / "a05_s03_e01").mkdir()          # an empty sample folder: reported
    index = nucla.prepare(root, tmp_path / "prep", 40, [f"c{i}" for i in range(10)])
    assert len(index.samples) == 6 and len(index.errors) == 1
    assert {s.label for s in index.samples} == {0, 9}
    s = index.samples[0]
    assert (s.frames, s.width, s.height, s.has_joints) == (5, 64, 48, False)
    data = DataConfig(dataset="nucla", root=str(tmp_path / "prep"), protocol="v3_12",
                      val_fraction=0.25)
    train, val, test = split_samples(index.samples, data, seed=0)
    assert {x.camera for x in train + val} == {1, 2} and {x.camera for x in test} == {3}
    assert len(val) == 1 and len(test) == 2
    with pytest.raises(ValueError, match="protocol"):
        nucla.is_train(1, "v4_12")


class _EpochEcho(torch.utils.data.Dataset):
    """Returns the epoch last set, to see what the loader's worker processes observe."""

    def __init__(self):
        """Start at epoch 0."""
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Record the epoch."""
        self.epoch = epoch

    def __len__(self) -> int:
        """Four items."""
        return 4

    def __getitem__(self, i: int) -> int:
        """The epoch seen by the process loading item ``i``."""
        return self.epoch


def test_training_loader_workers_see_every_epoch():
    """set_epoch reaches the training loader's worker processes (new sub-sequences each epoch)."""
    cfg = load_train_config("config/train/synthetic.yaml",
                            ["data.num_workers=1", "optim.batch_size=2"])
    ds = _EpochEcho()
    loader = make_loader(ds, cfg, train=True)
    for epoch in range(3):
        ds.set_epoch(epoch)
        seen = torch.cat(list(loader)).tolist()
        assert seen == [epoch] * 4


def test_evaluation_batches_hold_about_batch_size_clips():
    """Validation (1 clip per video) and test (5 clips) loaders batch by clips, not videos."""
    cfg = load_train_config("config/train/synthetic.yaml",
                            ["data.num_workers=0", "optim.batch_size=10"])
    ds = _EpochEcho()
    for clips, batch in ((1, 10), (5, 2), (20, 1)):
        ds.clips = clips
        assert make_loader(ds, cfg, train=False).batch_size == batch
