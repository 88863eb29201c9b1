"""SIGTERM while the recognizer process is still importing: the documented clean exit 0.

rclpy installs its SIGTERM handler in ``rclpy.init``, after seconds of imports; before that the
signal's default action would end the process by the signal (exit status -15). The test waits
until the process has mapped numpy's core library (imported part-way through ``import rclpy``,
long before ``rclpy.init``), so the signal lands in the import phase.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("rclpy")
from glimpse_ros.ros.discovery import domain_id, local_env  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def mapped(pid: int, name: str) -> bool:
    """Whether process ``pid`` has a file containing ``name`` mapped."""
    try:
        return name in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.parametrize("library", ["_multiarray_umath", "cv2"])
def test_sigterm_during_imports_exits_0(library: str) -> None:
    """SIGTERM once ``library`` is loaded (imports running): exit 0, no traceback."""
    env = local_env(domain_id(150, 199), PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "glimpse_ros.recognizer"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not mapped(proc.pid, library) and proc.poll() is None:
            assert time.monotonic() < deadline, f"{library} never loaded"
            time.sleep(0.002)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    assert "Traceback" not in out
    assert "model" not in out.lower()  # it ended in the import phase, before loading anything
