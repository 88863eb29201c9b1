"""Fast DDS transport profile for camera-sized messages (``config/fastdds.xml``).

Fast DDS's default shared-memory segment (512 KB) is smaller than one raw camera frame, so between
processes a frame travels as fragments that overwrite each other; with the sensor-data (best
effort) QoS of REP-2003 almost no raw frame arrives. The shipped profile gives the shared-memory
transport a 64 MB segment (plus UDPv4 for other hosts). Our entry points apply it before the first
DDS participant exists, unless the user chose a profile file already; the camera driver's process
should use the same file (see the README).
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path

PROFILE = Path("config") / "fastdds.xml"
# Fast DDS 3 (Kilted and later, the PyPI wheels) reads the first; Fast DDS 2 (Humble, Iron,
# Jazzy) the second. Only the one in use is set: with Fast DDS 3 the old name logs a deprecation.
PROFILE_ENV_VARS = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")
FAST_DDS_2_DISTROS = ("humble", "iron", "jazzy")


def profile_path() -> Path | None:
    """The shipped ``config/fastdds.xml`` (source tree or installed share directory), or None."""
    from glimpse_ros.runtime.model_files import share_dirs  # torch-free

    for root in share_dirs():
        if (root / PROFILE).is_file():
            return root / PROFILE
    return None


def apply_default_transport(environ: MutableMapping[str, str] | None = None) -> Path | None:
    """Point Fast DDS at the shipped profile unless the user has chosen otherwise.

    Must run before ``rclpy.init`` (Fast DDS reads the variables once per process). Nothing is
    changed when either profile variable is set (an empty value keeps Fast DDS's defaults), when
    ``SKIP_DEFAULT_XML`` is set, or when another RMW than Fast DDS is selected.

    Args:
        environ: environment to update (default: ``os.environ``, which also updates the C
            environment that Fast DDS reads).

    Returns:
        The profile applied, or None when nothing was changed.
    """
    env = os.environ if environ is None else environ
    if any(var in env for var in PROFILE_ENV_VARS) or "SKIP_DEFAULT_XML" in env:
        return None
    rmw = env.get("RMW_IMPLEMENTATION", "")
    if rmw and not rmw.startswith("rmw_fastrtps"):
        return None
    path = profile_path()
    if path is None:
        return None
    fast_dds_2 = env.get("ROS_DISTRO", "").lower() in FAST_DDS_2_DISTROS
    env[PROFILE_ENV_VARS[1] if fast_dds_2 else PROFILE_ENV_VARS[0]] = str(path)
    return path


__all__ = ["PROFILE_ENV_VARS", "apply_default_transport", "profile_path"]
