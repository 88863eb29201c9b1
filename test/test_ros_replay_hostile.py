"""The replay CLI in its own process under hostile arguments and bags: exit 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("rclpy")
pytest.importorskip("rosbags")
from bag_fixtures import image_cdr, string_cdr, write_raw_bag  # noqa: E402

from glimpse_ros.ros.discovery import domain_id, local_env  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def replay(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """``python -m glimpse_ros.replay ARGS`` on a private domain; output captured."""
    env = local_env(domain_id(150, 199), PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "glimpse_ros.replay", *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def good_bag(tmp_path_factory) -> Path:
    """A 3-frame bag at 20 fps."""
    path = tmp_path_factory.mktemp("replay") / "bag"
    write_raw_bag(path, "mcap", [image_cdr(i, 10.0 + 0.05 * i) for i in range(3)],
                  [int(1e9) + i * 50_000_000 for i in range(3)])
    return path


@pytest.mark.parametrize("args, named", [
    (["--fps", "-5"], "--fps"), (["--fps", "nan"], "--fps"), (["--fps", "0"], "--fps"),
    (["--hfov", "0"], "--hfov"), (["--hfov", "180"], "--hfov"),
    (["--width", "-10", "--height", "10"], "--width"), (["--width", "0", "--height", "0"],
                                                        "--width"),
    (["--width", "5000", "--height", "5000"], "--max-frame-pixels"),
    (["--duration", "inf"], "--duration"), (["--wait", "-1"], "--wait"),
])
def test_bad_arguments_exit_2_naming_the_argument(good_bag: Path, args: list[str],
                                                  named: str) -> None:
    """Validated before anything starts: exit 2, the argument and its range, no traceback."""
    proc = replay(str(good_bag), *args)
    assert proc.returncode == 2, proc.stderr
    assert named in proc.stderr and "Traceback" not in proc.stderr + proc.stdout
    assert "must be" in proc.stderr or "over" in proc.stderr


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_bag_of_non_cdr_messages_exits_2(tmp_path, storage: str) -> None:
    """Nothing publishable: exit 2 with the count of skipped messages, no traceback."""
    write_raw_bag(tmp_path / "bag", storage,
                  [os.urandom(80), string_cdr("x" * 40), os.urandom(3000)],
                  [int(1e9) + i for i in range(3)])
    proc = replay(str(tmp_path / "bag"), "--fps", "100")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "nothing published" in out and "3 skipped (3 not_cdr)" in out
    assert "Traceback" not in out


def test_mixed_bag_publishes_the_good_frames_and_counts_the_rest(tmp_path) -> None:
    """Two good frames among non-CDR messages: exit 0, the count of skipped ones logged."""
    write_raw_bag(tmp_path / "bag", "sqlite3",
                  [image_cdr(0, 5.0), os.urandom(90), image_cdr(1, 5.1), os.urandom(7)],
                  [int(1e9) + i * 10**8 for i in range(4)])
    proc = replay(str(tmp_path / "bag"), "--fps", "50")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "published 2 frames (inputs: 2 skipped (2 not_cdr))" in out
    assert "Traceback" not in out


def test_help_documents_the_pixel_bound_and_ranges() -> None:
    """--help names the shared bound (4096x4096) and the hfov range."""
    proc = replay("--help")
    text = " ".join(proc.stdout.split())
    assert proc.returncode == 0 and "16777216" in text and "1..179 deg" in text


def test_pinhole_camera_info_refuses_degenerate_fields_of_view() -> None:
    """180 deg would give a focal length of ~1e-14: refused with the range."""
    from std_msgs.msg import Header

    from glimpse_ros.ros.replay import camera_info

    info = camera_info(64, 48, 90.0, Header())
    assert info.k[0] == pytest.approx(32.0)  # (W / 2) / tan(45 deg)
    for bad in (0.0, 180.0, float("nan")):
        with pytest.raises(ValueError, match="1..179"):
            camera_info(64, 48, bad, Header())
