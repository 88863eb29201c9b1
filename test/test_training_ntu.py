"""NTU RGB+D format: skeleton parser fixtures, sample names, CS/CV splits, validation split."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from training.config import DataConfig
from training.ntu.names import parse_name
from training.ntu.skeleton import (SkeletonFormatError, format_skeleton, parse_skeleton_text,
                                   read_skeleton)
from training.ntu.splits import CS_TRAIN_SUBJECTS, is_train, split_names, validation_split
from training.prepared import SampleInfo
from training.splits import split_samples


def _body(offset: float) -> np.ndarray:
    """(25, 2) colour coordinates offset + joint index."""
    j = np.arange(25, dtype=np.float64)
    return np.stack([offset + j, 2 * offset + j], axis=1)


def _joint_line(cx: float, cy: float) -> str:
    """Format one NTU joint line with the given colour coordinates."""
    return f"0.1 0.2 3.0 250.0 200.0 {cx} {cy} 1 0 0 0 2"


def _write_fixture(path, frames: list[list[np.ndarray]]) -> None:
    """Write a skeleton file by hand (not with format_skeleton) in the NTU layout."""
    lines = [str(len(frames))]
    for bodies in frames:
        lines.append(str(len(bodies)))
        for xy in bodies:
            lines.append("72057594037931101 0 1 1 1 1 0 -0.05 0.3 2")
            lines.append("25")
            lines += [_joint_line(*xy[j]) for j in range(25)]
    path.write_text("\r\n".join(lines) + "\r\n")      # NTU files use CRLF line ends


def test_two_bodies_one_body_and_empty_frames(tmp_path):
    """Two bodies one body and empty frames."""
    f = tmp_path / "S001C001P001R001A050.skeleton"
    _write_fixture(f, [[_body(100), _body(500)], [_body(101)], [], [_body(102), _body(502)]])
    s = read_skeleton(f)
    assert s.num_frames == 4
    assert s.present.tolist() == [[True, True], [True, False], [False, False], [True, True]]
    np.testing.assert_allclose(s.joints[0, 1], _body(500))
    np.testing.assert_allclose(s.joints[1, 0], _body(101))
    assert (s.joints[1, 1] == 0).all() and (s.joints[2] == 0).all()


def test_third_body_ignored(tmp_path):
    """Third body ignored."""
    f = tmp_path / "x.skeleton"
    _write_fixture(f, [[_body(1), _body(2), _body(3)]])
    s = read_skeleton(f)
    assert s.joints.shape == (1, 2, 25, 2)
    np.testing.assert_allclose(s.joints[0, 1], _body(2))


def test_empty_file_gives_zero_frames(tmp_path):
    """Empty file gives zero frames."""
    f = tmp_path / "empty.skeleton"
    f.write_text("")
    s = read_skeleton(f)
    assert s.num_frames == 0 and s.present.shape == (0, 2)


def test_truncated_file_raises_with_name(tmp_path):
    """Truncated file raises with name."""
    f = tmp_path / "trunc.skeleton"
    _write_fixture(f, [[_body(1)]])
    f.write_text("\n".join(f.read_text().splitlines()[:10]))
    with pytest.raises(SkeletonFormatError, match="trunc.skeleton"):
        read_skeleton(f)


def test_writer_round_trip():
    """Writer round trip."""
    frames = [[_body(10)], [], [_body(11), _body(12)]]
    s = parse_skeleton_text(format_skeleton(frames))
    assert s.present.tolist() == [[True, False], [False, False], [True, True]]
    np.testing.assert_allclose(s.joints[2, 1], _body(12), atol=1e-3)


def test_names_and_labels():
    """Names and labels."""
    n = parse_name("nturgb+d_rgb/S017C003P020R002A060_rgb.avi")
    assert (n.setup, n.camera, n.subject, n.replication, n.action) == (17, 3, 20, 2, 60)
    assert n.label == 59 and n.skeleton_name == "S017C003P020R002A060.skeleton"
    with pytest.raises(ValueError):
        parse_name("clip.avi")


def test_cross_subject_and_cross_view_membership():
    """Cross subject and cross view membership."""
    def name(c, p):
        """Name."""
        return parse_name(f"S001C{c:03d}P{p:03d}R001A001")
    assert not is_train(name(1, 40), "cs")            # subject 40 is a test subject
    assert is_train(name(1, 38), "cs") and not is_train(name(2, 3), "cs")
    assert CS_TRAIN_SUBJECTS == {1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31,
                                 34, 35, 38}
    assert not is_train(name(1, 1), "cv")             # camera 1 is the CV test camera
    assert is_train(name(2, 40), "cv") and is_train(name(3, 40), "cv")
    train, test = split_names([name(1, 1), name(2, 40), name(3, 2)], "cs")
    assert train == [0, 2] and test == [1]
    with pytest.raises(ValueError, match="protocol"):
        is_train(name(1, 1), "xs")


def test_validation_split_is_five_percent_and_deterministic():
    """Validation split is five percent and deterministic."""
    idx = list(range(1000))
    tr, val = validation_split(idx, 0.05, seed=3)
    assert len(val) == 50 and not set(tr) & set(val) and len(tr) + len(val) == 1000
    assert validation_split(idx, 0.05, seed=3) == (tr, val)


@pytest.mark.parametrize("line, value, what", [
    (1, "72057594037931101 0 1 1 1 1 0 -0.05 0.3", "body info line needs 10 values"),
    (3, "0.1 0.2 3.0 250.0 200.0 5.0 6.0", "joint line needs 12 values"),
    (3, "0.1 0.2 3.0 250.0 200.0 5.0 6.0 1 0 0 0 2 9", "joint line needs 12 values"),
    (0, "-1", "negative body count"),
])
def test_malformed_lines_raise_with_line_number(tmp_path, line, value, what):
    """Body info lines have 10 values and joint lines 12; the error names file and line."""
    f = tmp_path / "bad.skeleton"
    _write_fixture(f, [[_body(1)]])
    lines = f.read_text().splitlines()
    lines[line + 1] = value                        # line 0 is the frame count
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(SkeletonFormatError, match=f"bad.skeleton:{line + 2}: {what}"):
        read_skeleton(f)


def test_split_samples_exact_ntu_protocols():
    """The training pipeline's splits: exactly the listed CS subjects, cameras 2/3 for CV."""
    samples = [SampleInfo(name=f"S001C{c:03d}P{p:03d}R001A001", label=0, frames=10, width=1920,
                          height=1080, subject=p, camera=c, has_joints=True)
               for p in range(1, 41) for c in (1, 2, 3)]
    cs_train = {1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38}
    data = DataConfig(dataset="ntu", protocol="cs", val_fraction=0.05)
    train, val, test = split_samples(samples, data, seed=0)
    assert {s.subject for s in train + val} == cs_train
    assert {s.subject for s in test} == set(range(1, 41)) - cs_train     # includes 40
    assert len(val) == round(0.05 * 60) and len(train) + len(val) == 60 and len(test) == 60
    train, val, test = split_samples(samples, replace(data, protocol="cv"), seed=0)
    assert {s.camera for s in train + val} == {2, 3} and {s.camera for s in test} == {1}
    assert len(train) + len(val) == 80 and len(test) == 40
    with pytest.raises(ValueError, match="protocol"):
        split_samples(samples, replace(data, protocol="xs"), seed=0)


def _tracked_fixture(frames: list[list[tuple[int, float]]]) -> str:
    """NTU text by hand: per frame a list of (body id, x offset); joints move with the offset.

    Camera-space x is the colour x / 1000 (metres), so both measures of motion agree.
    """
    lines = [str(len(frames))]
    for bodies in frames:
        lines.append(str(len(bodies)))
        for body_id, dx in bodies:
            lines.append(f"{body_id} 0 1 1 1 1 0 -0.05 0.3 2")
            lines.append("25")
            for j in range(25):
                cx, cy = 300.0 + dx + j, 400.0 + 2 * j
                lines.append(f"{cx / 1000:.4f} 0.2 3.0 100.0 90.0 {cx} {cy} 1 0 0 0 2")
    return "\r\n".join(lines) + "\r\n"


def test_body_selection_by_id_and_motion_keeps_slots():
    """The two most moving body ids keep their slots; a static third detection is dropped."""
    a, b, ghost = 72057594037931101, 72057594037931102, 72057594037931199
    frames = [[(a, 0.0), (b, 500.0)],
              [(ghost, 900.0), (a, 30.0), (b, 520.0)],     # false detection listed first
              [(a, 60.0), (b, 540.0)],
              [(ghost, 900.0), (a, 90.0)],                   # b has left the scene
              [(ghost, 900.0), (a, 120.0)]]
    s = parse_skeleton_text(_tracked_fixture(frames))
    assert s.present.tolist() == [[True, True], [True, True], [True, True], [True, False],
                                  [True, False]]
    # Slot 0 is body a in every frame (x offsets 0, 30, ..., 120); slot 1 is b while present.
    np.testing.assert_allclose(s.joints[:, 0, 0, 0], [300.0, 330.0, 360.0, 390.0, 420.0])
    np.testing.assert_allclose(s.joints[:3, 1, 0, 0], [800.0, 820.0, 840.0])
    assert not np.any(s.joints[3:, 1])
    assert not np.any(np.isclose(s.joints[..., 0], 1200.0))      # the ghost never appears


def test_body_selection_prefers_motion_over_presence():
    """A moving body seen in few frames beats a static one seen in all; slots follow appearance."""
    still, mover = 11, 22
    frames = [[(still, 0.0)], [(still, 0.0)], [(still, 0.0), (mover, 100.0)],
              [(mover, 300.0), (still, 0.0)]]
    s = parse_skeleton_text(_tracked_fixture(frames), max_bodies=1)
    assert s.present[:, 0].tolist() == [False, False, True, True]
    np.testing.assert_allclose(s.joints[2:, 0, 0, 0], [400.0, 600.0])
    both = parse_skeleton_text(_tracked_fixture(frames))
    # The body that appears first takes slot 0 and keeps it when the file lists it second.
    np.testing.assert_allclose(both.joints[:, 0, 0, 0], [300.0] * 4)
    np.testing.assert_allclose(both.joints[2:, 1, 0, 0], [400.0, 600.0])
