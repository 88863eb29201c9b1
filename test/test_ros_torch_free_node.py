"""The recognizer node from a model bundle in a virtual environment without torch, over real DDS.

The venv holds ``requirements-runtime.txt`` and the package's wheel, nothing else
(:mod:`runtime_venv`); ``import torch`` fails there. The node runs as its own process from that
venv on a bundle of the shipped demo model (OpenVINO); a probe process publishes synthetic 640x480
camera frames with their CameraInfo (:mod:`torch_free_probe`). Every label, top-1 probability (2
decimals in the marker text) and glimpse box must equal the Recognizer's on the same bundle, fed
the same frames with the same stamps in this process. The node process must never have imported
a torch module (``-X importtime``) nor mapped a torch library, checked against what it did import
and map (OpenVINO, rclpy), so that neither check can pass by looking at nothing.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("torch")  # this process writes the bundle
pytest.importorskip("openvino")

from glimpse_ros.config import RecognizerConfig  # noqa: E402
from glimpse_ros.ros.discovery import domain_id, local_env  # noqa: E402
from glimpse_ros.ros.transport import PROFILE_ENV_VARS  # noqa: E402
from glimpse_ros.runtime.model_files import default_model_path  # noqa: E402
from glimpse_ros.runtime.recognizer import Recognizer  # noqa: E402
from runtime_venv import (IndexUnreachable, clean_env, install_package,  # noqa: E402
                          runtime_venv, site_packages_mb)

REPO = Path(__file__).resolve().parents[1]
NODE = "torch_free"
SIZE = (640, 480)  # 921,600 bytes per frame: more than Fast DDS's default 512 KB segment
ACTIONS, FRAMES_PER_ACTION = (0, 2), 12  # synthetic "wave left hand", then "clap"
IMPORT_LINE = re.compile(r"^import time:\s+-?\d+ \|\s+-?\d+ \|\s*(\S+)\s*$")


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """The cached runtime venv, with the current package installed."""
    base = shutil.which("python3.11")
    if base is None:
        pytest.skip("python3.11 not on PATH (the ROS wheels of requirements-runtime.txt are "
                    "cp311)")
    start = time.monotonic()
    try:
        path = runtime_venv(base)
    except IndexUnreachable as err:
        pytest.skip(f"pip cannot reach the package index: {str(err).strip()[-300:]}")
    print(f"\nruntime venv {path}: ready in {time.monotonic() - start:.1f} s")
    install_package(path, tmp_path_factory.mktemp("wheel"))
    print(f"runtime venv site-packages: {site_packages_mb(path):.0f} MB")
    return path


def frames() -> np.ndarray:
    """Two synthetic actions back to back, RGB ``(N, 480, 640, 3)``."""
    from training.synthetic.generator import render, sample_spec

    return np.concatenate([render(sample_spec(11, action, SIZE, FRAMES_PER_ACTION, 0.0))[0]
                           for action in ACTIONS])


def run_python(venv: Path, code: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``code`` with the venv's interpreter, outside the source tree."""
    return subprocess.run([str(venv / "bin" / "python"), "-c", code], cwd=cwd,
                          env=clean_env(), capture_output=True, text=True, timeout=120)


def node_env(domain: int, **extra: str) -> dict[str, str]:
    """Private domain, localhost discovery, default RMW (Fast DDS) and its shipped profile."""
    env = local_env(domain, clean_env(**extra))
    for var in (*PROFILE_ENV_VARS, "RMW_IMPLEMENTATION", "SKIP_DEFAULT_XML"):
        env.pop(var, None)
    return env


class Output:
    """Lines of a process's merged stdout/stderr, each with its arrival time (reader thread)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        """Start reading."""
        self.lines: list[tuple[float, str]] = []
        self.thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self.thread.start()

    def _read(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def first(self, text: str) -> float | None:
        """Arrival time of the first line containing ``text``."""
        return next((t for t, line in self.lines if text in line), None)

    def imports(self) -> set[str]:
        """Modules listed by ``-X importtime``."""
        return {m.group(1) for _, line in self.lines if (m := IMPORT_LINE.match(line))}

    def log(self) -> str:
        """Everything but the import timings."""
        return "\n".join(line for _, line in self.lines if not IMPORT_LINE.match(line))


def reference(bundle: Path, clip: np.ndarray, sent: list, stamps: set, cache: Path) -> list:
    """The in-process Recognizer's results for the frames the node processed, in order."""
    rec = Recognizer(RecognizerConfig(backend="openvino", num_threads=1,
                                      engine_cache_dir=str(cache)), bundle)
    assert rec.backend_name == "openvino"
    out = []
    for index, sec, nanosec in sent:
        if (sec, nanosec) in stamps:  # stamp_to_float of the node
            out += [((sec, nanosec), r) for r in rec.push(clip[index], sec + nanosec * 1e-9)]
    return out


@pytest.mark.slow
def test_node_runs_a_bundle_without_torch_and_equals_the_recognizer(venv, tmp_path) -> None:
    """Labels, probabilities and glimpses over DDS from a torch-free venv = the in-process run."""
    from glimpse_ros.runtime.export.bundle import write_bundle

    # the venv: no torch, the installed package (not the source tree) is what imports
    probe = run_python(venv, "import torch", tmp_path)
    assert probe.returncode != 0 and "No module named 'torch'" in probe.stderr, probe.stderr
    where = run_python(venv, "import glimpse_ros; print(glimpse_ros.__file__)", tmp_path)
    assert where.returncode == 0, where.stderr
    site = next(venv.glob("lib/python*/site-packages"))
    assert Path(where.stdout.strip()).is_relative_to(site), where.stdout

    bundle = write_bundle(default_model_path(), tmp_path / "bundle")
    clip = frames()
    np.save(tmp_path / "frames.npy", clip)
    domain = domain_id(150, 199)
    cmd = [str(venv / "bin" / "python"), "-X", "importtime", "-m", "glimpse_ros.recognizer",
           "--ros-args", "-r", f"__node:={NODE}", "-p", f"model_path:={bundle}",
           "-p", "backend:=openvino", "-p", "num_threads:=1",
           "-p", f"engine_cache_dir:={tmp_path / 'node_cache'}",
           "-p", "diagnostics_period_s:=0.25"]
    started = time.monotonic()
    node = subprocess.Popen(cmd, cwd=tmp_path, env=node_env(domain, OMP_NUM_THREADS="1",
                                                            PYTHONUNBUFFERED="1"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = Output(node)
    maps = ""
    try:
        probe_env = node_env(domain, OMP_NUM_THREADS="1",
                             PYTHONPATH=f"{REPO}:{REPO / 'test'}")
        proc = subprocess.run([sys.executable, "-m", "torch_free_probe",
                               str(tmp_path / "frames.npy"), NODE, str(tmp_path / "out.json")],
                              cwd=REPO, env=probe_env, capture_output=True, text=True,
                              timeout=400)
        assert proc.returncode == 0, proc.stdout + proc.stderr + output.log()[-3000:]
        assert node.poll() is None, output.log()[-3000:]
        maps = Path(f"/proc/{node.pid}/maps").read_text()
    finally:
        node.send_signal(signal.SIGINT)
        try:
            node.wait(timeout=20)
        except subprocess.TimeoutExpired:
            node.kill()
            node.wait()
        output.thread.join(timeout=5)
    log = output.log()
    got = json.loads((tmp_path / "out.json").read_text())
    assert got["error"] is None, f"{got['error']}\n{log[-3000:]}"
    assert node.returncode == 0, log[-3000:]
    listening = output.first("listening on /image")
    assert listening is not None, log[-3000:]
    print(f"node start-up (process start to 'listening on'): {listening - started:.2f} s; "
          f"{len(got['sent'])} frames sent for {len(clip)}")

    # never torch, checked against what the process did import and map
    imported = output.imports()
    assert {"rclpy", "openvino", "glimpse_ros.runtime.openvino_engine",
            "glimpse_ros.ros.node"} <= imported, sorted(imported)[:50]
    assert not [m for m in imported if m == "torch" or m.startswith("torch.")]
    assert "libopenvino" in maps and "librcl" in maps
    assert not [line for line in maps.splitlines() if "libtorch" in line or "/torch/" in line]

    # the installed package's data files: the Fast DDS profile of the venv's share directory
    assert f"Fast DDS profile: {venv}/share/glimpse_ros/config/fastdds.xml" in log, log[-3000:]
    assert "configured: backend openvino" in log
    assert got["profile"].endswith("config/fastdds.xml")  # the camera side's transport

    results = {(sec, nanosec): r for sec, nanosec, r in got["results"]}
    processed = {index for index, sec, nanosec in got["sent"] if (sec, nanosec) in results}
    assert processed == set(range(len(clip)))  # every frame went through the node
    want = reference(bundle, clip, got["sent"], set(results), tmp_path / "cache")
    assert [stamp for stamp, _ in want] == sorted(results)  # one result per frame, same stamps
    assert got["labels"] == [r.label for _, r in want]  # ~/label, in order
    assert len(set(got["labels"])) > 1  # the two actions are told apart: a meaningful check
    for stamp, r in want:
        node_result = results[stamp]
        assert node_result["label"] == r.label
        assert abs(node_result["prob"] - r.top_k[0][1]) <= 0.005 + 1e-4  # printed with .2f
        centres = (r.boxes[:, :2] + r.boxes[:, 2:]) / 2.0 / SIZE[0]  # image plane: 1 m = width
        np.testing.assert_allclose(node_result["centres"], centres, rtol=0, atol=1e-5)
    assert len(got["camera"]) >= len(clip) - 1  # CameraInfo received: camera-frame markers
    diag = got["diag"]
    assert diag["backend"] == "openvino"
    assert int(diag["frames_processed"]) == len(results)
    assert int(diag["dropped_frames"]) == 0 and int(diag["rejected_frames"]) == 0
