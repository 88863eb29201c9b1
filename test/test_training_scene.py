"""Synthetic distractor scene: determinism, which body is the actor, what the loaders see."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from training.dataset import ClipDataset
from training.ntu.names import parse_name
from training.ntu.prepare import prepare
from training.ntu.skeleton import read_skeleton
from training.prepared import PreparedIndex, read_frames
from training.synthetic.__main__ import main as synth_main
from training.synthetic.actions import ACTION_NAMES

SIZE = (160, 120)
ARGS = ["--videos", "18", "--width", str(SIZE[0]), "--height", str(SIZE[1]), "--frames", "16",
        "--missing-skeleton-prob", "0.0", "--scene", "distractor"]
# Joints that move most (relative to the spine base) in actions with one clearly moving limb,
# written from the action descriptions, not from the generator: wave left / right hand, punch
# (right arm driven forward), kick (right leg).
MOVING = {1: {"HandTipLeft", "HandLeft", "ThumbLeft", "WristLeft"},
          2: {"HandTipRight", "HandRight", "ThumbRight", "WristRight"},
          4: {"ElbowRight", "WristRight", "HandRight", "HandTipRight", "ThumbRight"},
          5: {"FootRight", "AnkleRight", "KneeRight"}}
KINECT = ("SpineBase", "SpineMid", "Neck", "Head", "ShoulderLeft", "ElbowLeft", "WristLeft",
          "HandLeft", "ShoulderRight", "ElbowRight", "WristRight", "HandRight", "HipLeft",
          "KneeLeft", "AnkleLeft", "FootLeft", "HipRight", "KneeRight", "AnkleRight",
          "FootRight", "SpineShoulder", "HandTipLeft", "ThumbLeft", "HandTipRight", "ThumbRight")


def _digest(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())
            if p.suffix in (".avi", ".skeleton", ".npz")}


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """18 distractor-scene videos (two per action)."""
    root = tmp_path_factory.mktemp("scene")
    assert synth_main(["--out", str(root), "--seed", "4"] + ARGS) == 0
    return root


def _moving_joint(points: np.ndarray) -> str:
    """Name of the joint whose position relative to the spine base varies most over time."""
    rel = points - points[:, :1]                                     # (T, 25, 2)
    return KINECT[int(np.argmax(rel.std(axis=0).sum(axis=1)))]


def test_scene_is_deterministic(scene, tmp_path):
    """Same seed: identical files; another seed: different videos and skeletons."""
    assert synth_main(["--out", str(tmp_path / "same"), "--seed", "4"] + ARGS) == 0
    first, again = _digest(scene), _digest(tmp_path / "same")
    assert len(first) == 18 * 3 and first == again
    assert synth_main(["--out", str(tmp_path / "other"), "--seed", "5"] + ARGS) == 0
    other = _digest(tmp_path / "other")
    assert not set(first.values()) & set(other.values())
    assert json.loads((scene / "synthetic.json").read_text())["scene"] == "distractor"


def test_actor_is_body_zero_and_does_the_labelled_action(scene):
    """The .skeleton holds one body, the one doing the label; the sidecar holds the other."""
    checked = 0
    for skel in sorted(scene.glob("*.skeleton")):
        name = parse_name(skel.name)
        s = read_skeleton(skel)
        assert s.num_frames == 16 and s.present[:, 0].all() and not s.present[:, 1].any()
        actor = s.joints[:, 0]                                        # (T, 25, 2)
        with np.load(scene / f"{name.stem}.distractor.npz") as z:
            other, other_action = z["joints"], int(z["action"])
        assert other.shape == (16, 25, 2)
        assert other_action != name.action and 1 <= other_action <= len(ACTION_NAMES)
        if name.action in MOVING:
            assert _moving_joint(actor) in MOVING[name.action], skel.name
            checked += 1
        if other_action in MOVING:
            assert _moving_joint(other) in MOVING[other_action], skel.name
        # Small actor: its joints span under 45 % of the frame height; the figures are apart.
        assert np.ptp(actor[..., 1]) < 0.45 * SIZE[1]
        gap = abs(np.median(actor[:, 0, 0]) - np.median(other[:, 0, 0]))
        assert gap > 0.2 * (np.ptp(actor[..., 1]) + np.ptp(other[..., 1]))
    assert checked == 8


def test_actor_wears_the_white_shirt(scene):
    """The actor's lower torso is white in most frames (limbs may cross it), never the other's."""
    white = {True: [], False: []}
    for skel in sorted(scene.glob("*.skeleton")):
        name = parse_name(skel.name)
        actor = read_skeleton(skel).joints[:, 0]
        with np.load(scene / f"{name.stem}.distractor.npz") as z:
            other = z["joints"]
        frames, _ = read_frames(scene / name.video_name, list(range(16)))
        for t, frame in enumerate(frames):
            for pts, is_actor in ((actor, True), (other, False)):
                x, y = np.round(0.5 * (pts[t, 0] + pts[t, 1])).astype(int)  # SpineBase-SpineMid
                patch = frame[y - 1:y + 2, x - 1:x + 2].reshape(-1, 3)    # 3x3 pixels
                white[is_actor].append(np.median(patch, axis=0).min() > 215)
    assert np.mean(white[True]) > 0.6
    assert not any(white[False])


def test_loader_gives_the_losses_only_the_actor(scene, tmp_path):
    """Prepared and loaded: body slot 0 carries the actor's joints, slot 1 is masked."""
    prepare(scene, scene, tmp_path, 48, list(ACTION_NAMES), workers=1, dataset="synthetic")
    index = PreparedIndex.load(tmp_path)
    assert len(index.samples) == 18 and all(s.has_joints for s in index.samples)
    ds = ClipDataset(tmp_path, index.samples, frames=4, resize=48, crop=48, train=False)
    for i in range(3):
        item = ds[i]
        assert item["mask"][:, 0].any() and not item["mask"][:, 1].any()
        s = ds.samples[i]
        src = read_skeleton(scene / f"{s.name}.skeleton").joints[:, 0]
        # Crop = whole square here: x_crop = ((x + 0.5) * 48 / W - 0.5) / 23.5 - 1.
        idx = [2, 6, 10, 14]                                           # 4 segments of 16
        want = ((src[idx] + 0.5) * (48 / np.array(SIZE)) - 0.5) / 23.5 - 1.0
        got = item["joints"][:, 0].numpy()
        ok = item["mask"][:, 0].numpy()
        np.testing.assert_allclose(got[ok], want[ok], atol=1e-4)
