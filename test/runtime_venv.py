"""A virtual environment holding ``requirements-runtime.txt`` only (no torch) and the package.

The environment is created once per content of ``requirements-runtime.txt`` under
``.venv-runtime/<hash>/`` (git-ignored; one is kept, others are removed) and reused by later runs.
The package itself is built as a wheel from a copy of the sources and reinstalled on every call,
so the environment always runs the current code, as installed files (not the source tree).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parents[1]
REQUIREMENTS = REPO / "requirements-runtime.txt"
CACHE = REPO / ".venv-runtime"
PACKAGE = "glimpse_ros"
COPIED = ("glimpse_ros", "training", "launch", "config", "models", "resource",
          "setup.py", "setup.cfg", "package.xml")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.onnx", "*.engine")
COMPLETE = ".complete"  # written last: a venv without it was interrupted and is rebuilt
# What pip prints when it cannot reach an index (urllib3/requests errors, retried then given up).
UNREACHABLE = ("NewConnectionError", "Failed to establish a new connection",
               "Temporary failure in name resolution", "Name or service not known",
               "Network is unreachable", "ConnectTimeoutError", "ReadTimeoutError",
               "ProxyError", "Could not fetch URL")


class IndexUnreachable(RuntimeError):
    """pip could not reach the package index (the install did not fail by itself)."""


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without what would let another environment's modules in.

    PYTHONPATH (the test run's points at the source tree), PYTHONHOME and the active venv are
    removed; user site-packages are disabled.
    """
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")}
    env.update(PYTHONNOUSERSITE="1", **extra)
    return env


def source_copy(dest: Path) -> Path:
    """Copy what setup.py packages into ``dest/src`` (builds write into the source tree)."""
    src = dest / "src"
    for name in COPIED:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=IGNORED)
        else:
            src.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, src / name)
    return src


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (two test runs must not build one venv together)."""
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _usable(python: Path) -> bool:
    try:
        return subprocess.run([str(python), "-c", "pass"], env=clean_env(),
                              timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def runtime_venv(base_python: str) -> Path:
    """The cached venv of ``requirements-runtime.txt``, created with ``base_python`` if needed.

    Raises:
        IndexUnreachable: pip failed because it could not reach the package index.
        AssertionError: pip failed otherwise (a requirement that does not resolve or build).
    """
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]
    venv = CACHE / digest
    python = venv / "bin" / "python"
    CACHE.mkdir(exist_ok=True)
    with _locked(CACHE / ".lock"):
        if (venv / COMPLETE).is_file() and _usable(python):
            return venv
        for old in CACHE.iterdir():  # other requirement sets, or this one interrupted
            if old.is_dir():
                shutil.rmtree(old)
        subprocess.run([base_python, "-m", "venv", str(venv)], check=True, timeout=300)
        proc = subprocess.run([str(python), "-m", "pip", "install", "--no-input",
                               "-r", str(REQUIREMENTS)], env=clean_env(), capture_output=True,
                              text=True, timeout=1800)
        if proc.returncode != 0:
            shutil.rmtree(venv)
            log = proc.stdout + proc.stderr
            if any(sign in log for sign in UNREACHABLE):
                raise IndexUnreachable(log[-1500:])
            raise AssertionError("pip install -r requirements-runtime.txt failed:\n" + log[-4000:])
        freeze = subprocess.run([str(python), "-m", "pip", "freeze"], env=clean_env(),
                                capture_output=True, text=True, check=True, timeout=120)
        (venv / COMPLETE).write_text(freeze.stdout)
    return venv


def install_package(venv: Path, work: Path) -> Path:
    """Build the package's wheel from a copy of the sources and (re)install it into ``venv``.

    ``pip install --no-deps .`` run by the venv's own pip would need setuptools' wheel builder
    in the venv (Python 3.11's venv ships setuptools 65 without it) or, with build isolation,
    the index on every run; the wheel is built here instead, with this interpreter's setuptools
    (as a release would be), and installed non-editable: the venv then runs the installed files
    and data files (``share/glimpse_ros``), proving that the wheel is complete.

    Returns:
        the installed wheel.
    """
    src = source_copy(work)
    dist = work / "dist"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "--no-build-isolation", "-q", "-w", str(dist), "."], cwd=src,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = dist.glob("*.whl")
    proc = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--no-input",
                           "--no-deps", "--no-index", "--force-reinstall", "-q", str(wheel)],
                          env=clean_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return wheel


def site_packages_mb(venv: Path) -> float:
    """Disk use of the venv's site-packages (MB, allocated blocks like ``du``)."""
    total = 0
    for root, _, files in os.walk(next(venv.glob("lib/python*/site-packages"))):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return total / 1e6


__all__ = ["CACHE", "IndexUnreachable", "clean_env", "install_package", "runtime_venv",
           "site_packages_mb", "source_copy"]
