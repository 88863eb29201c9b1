"""OpenCV's ``vtest.avi`` (pedestrians, 768x576, 10 fps), fetched once from Debian's opencv-doc.

The file is not shipped and never downloaded by tests: ``make bench-node`` calls
:func:`fetch_vtest`,
which runs ``apt-get download opencv-doc`` (after ``apt-get update`` when the package is unknown),
extracts only ``vtest.avi`` from the package's data archive and caches it in
``~/.cache/glimpse_ros/vtest.avi`` (``$GLIMPSE_ROS_CACHE`` overrides the directory).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "opencv-doc"
MEMBER = "./usr/share/doc/opencv-doc/examples/data/vtest.avi"


def cache_dir() -> Path:
    """Directory of cached downloads."""
    return Path(os.path.expanduser(os.environ.get("GLIMPSE_ROS_CACHE", "~/.cache/glimpse_ros")))


def cached_vtest() -> Path | None:
    """Path of the cached vtest.avi, or None when it was never fetched."""
    path = cache_dir() / "vtest.avi"
    return path if path.is_file() and path.stat().st_size > 0 else None


def _download(workdir: Path) -> Path:
    """Run ``apt-get download opencv-doc`` in ``workdir`` (``apt-get update`` once if needed)."""
    for attempt in range(2):
        proc = subprocess.run(["apt-get", "download", PACKAGE], cwd=workdir, capture_output=True,
                              text=True)
        debs = sorted(workdir.glob(f"{PACKAGE}_*.deb"))
        if proc.returncode == 0 and debs:
            return debs[0]
        if attempt == 0:
            subprocess.run(["apt-get", "update"], capture_output=True, text=True)
    raise RuntimeError(f"apt-get download {PACKAGE} failed: {proc.stderr.strip()[-500:]}")


def fetch_vtest() -> Path:
    """Return the cached vtest.avi, downloading and extracting it first when missing.

    Raises:
        RuntimeError: apt-get/dpkg-deb are missing or the download/extraction fails.
    """
    cached = cached_vtest()
    if cached is not None:
        return cached
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise RuntimeError("fetching vtest.avi needs apt-get and dpkg-deb (Debian/Ubuntu)")
    target = cache_dir() / "vtest.avi"
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="glimpse_vtest_") as tmp:
        deb = _download(Path(tmp))
        # Stream the package's data tar and keep the one member we need (the package is ~270 MB
        # unpacked).
        proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
        found = False
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for member in tar:
                if member.name == MEMBER and member.isfile():
                    partial = target.with_suffix(".part")
                    with tar.extractfile(member) as src, open(partial, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                    partial.replace(target)
                    found = True
                    break
        proc.stdout.close()
        proc.kill()
        proc.wait()
    if not found:
        raise RuntimeError(f"{MEMBER} not found in {deb.name}")
    return target
