"""Offline annotation under hostile input: every bad input counted, nothing usable => exit 2."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("rosbags")
from bag_fixtures import image_cdr, write_raw_bag  # noqa: E402
from test_sources_hostile import png_declaring  # noqa: E402

from glimpse_ros.tools.annotate import OUTPUTS, main  # noqa: E402


def run(args: list[str], capsys) -> tuple[int, str, str]:
    """main(args) with the progress bar off; (exit code, stdout, stderr)."""
    code = main([*args, "--backend", "torch", "--no-progress"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def named_files(line: str) -> list[Path]:
    """The output paths a summary line names after ``->``."""
    return [Path(p.strip()) for p in line.split("->", 1)[1].split(",")]


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_bag_of_non_cdr_messages_exits_2_with_one_line(tmp_path, capsys, storage: str) -> None:
    """Random bytes under the Image type: exit 2, one line with the count, no traceback."""
    write_raw_bag(tmp_path / "bag", storage, [os.urandom(100 + i) for i in range(6)],
                  [int(1e9) + i * 10**8 for i in range(6)])
    code, out, err = run([str(tmp_path / "bag"), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and out == ""
    (line,) = [ln for ln in err.splitlines() if ln.startswith("glimpse-annotate:")]
    assert "nothing annotated" in line and "6 skipped (6 not_cdr)" in line
    assert "Traceback" not in err and not (tmp_path / "o" / "overlay.mp4").exists()


def test_folder_of_corrupt_pngs_exits_2(tmp_path, capsys) -> None:
    """Five corrupt PNGs: exit 2 naming the five, no output file claimed."""
    (tmp_path / "f").mkdir()
    for i in range(5):
        (tmp_path / "f" / f"{i}.png").write_bytes(os.urandom(300))
    code, out, err = run([str(tmp_path / "f"), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "0 of 0 frames" in err and "5 skipped (5 corrupt)" in err
    assert "->" not in out + err


def test_mixed_folder_counts_skipped_and_names_only_written_files(tmp_path, capsys) -> None:
    """18 good images, 2 corrupt, 1 declaring 12000x12000: 18 annotated, 3 counted."""
    (tmp_path / "f").mkdir()
    for i in range(18):
        cv2.imwrite(str(tmp_path / "f" / f"{i:02d}.png"), np.full((48, 64, 3), 12 * i, np.uint8))
    (tmp_path / "f" / "05b.png").write_bytes(os.urandom(64))
    (tmp_path / "f" / "06b.jpg").write_bytes(b"\xff\xd8" + os.urandom(64))
    (tmp_path / "f" / "09b.png").write_bytes(png_declaring(12000, 12000))
    code, out, err = run([str(tmp_path / "f"), "--out", str(tmp_path / "o")], capsys)
    assert code == 0, err
    assert "annotated 18 of 18 frames (inputs: 3 skipped (2 corrupt, 1 too_large))" in out
    files = named_files(out.strip().splitlines()[-1])
    assert sorted(p.name for p in files) == sorted(OUTPUTS) and all(p.is_file() for p in files)
    meta = json.loads((tmp_path / "o" / "frames.json").read_text())
    assert meta["inputs_skipped"] == {"corrupt": 2, "too_large": 1}
    assert meta["frames_read"] == meta["frames_labelled"] == 18


def test_bag_with_one_receive_time_writes_overlay_at_stamp_rate(tmp_path, capsys) -> None:
    """All messages received at one instant: the overlay runs at the header stamps' 10 fps."""
    write_raw_bag(tmp_path / "bag", "mcap", [image_cdr(i, 50.0 + 0.1 * i) for i in range(8)],
                  [int(7e9)] * 8)
    code, out, err = run([str(tmp_path / "bag"), "--out", str(tmp_path / "o")], capsys)
    assert code == 0, err
    cap = cv2.VideoCapture(str(tmp_path / "o" / "overlay.mp4"))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(10.0)
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 8
    cap.release()


def test_pixel_bound_applies_to_folders_and_is_documented(tmp_path, capsys) -> None:
    """Only a 12000x12000 declaration in the folder: exit 2 naming too_large; --help says so."""
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "bomb.png").write_bytes(png_declaring(12000, 12000))
    code, _, err = run([str(tmp_path / "f"), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "1 skipped (1 too_large)" in err
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "16777216" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("args", [["--top-k", "0"], ["--max-frames", "-1"],
                                  ["--max-frame-pixels", "0"]])
def test_bad_numbers_exit_2_naming_the_argument(tmp_path, capsys, args: list[str]) -> None:
    """Argparse refuses out-of-range numbers with the argument's name."""
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path), "--out", str(tmp_path / "o"), *args])
    assert exc.value.code == 2 and args[0] in capsys.readouterr().err
