"""The ROS domain and discovery range of the benchmark and reliability runs (no rclpy import).

``make bench-node`` and ``make reliability`` start node processes and talk to them from their own
process. They honour the caller's ``ROS_DOMAIN_ID`` when it is set (so that a user can keep them
apart from, or put them beside, other ROS processes of the machine), pick a random one otherwise,
and restrict discovery to this host (``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``) for every node
they create, in the child processes and in their own.
"""

from __future__ import annotations

import os
import random
from typing import Mapping

#: Domain ids valid for every RMW (Fast DDS maps 0..232 onto UDP ports).
MAX_DOMAIN_ID = 232


def domain_id(low: int = 1, high: int = 100, environ: Mapping[str, str] | None = None) -> int:
    """``ROS_DOMAIN_ID`` from the environment when set, else a random id in ``[low, high]``.

    Raises:
        ValueError: ``ROS_DOMAIN_ID`` is set but is not an integer in 0..232 (the message names
            the variable and the range).
    """
    env = os.environ if environ is None else environ
    text = env.get("ROS_DOMAIN_ID", "").strip()
    if not text:
        return random.randint(low, high)
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_DOMAIN_ID:
        raise ValueError(f"ROS_DOMAIN_ID must be an integer in 0..{MAX_DOMAIN_ID}, got {text!r}")
    return value


def local_env(domain: int, environ: Mapping[str, str] | None = None,
              **extra: str) -> dict[str, str]:
    """A child process environment: ``domain``, localhost-only discovery, plus ``extra``.

    ``ROS_LOCALHOST_ONLY`` is removed: deprecated since Jazzy (it warns); the discovery range
    replaces it.
    """
    env = dict(os.environ if environ is None else environ)
    env.update(ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", **extra)
    env.pop("ROS_LOCALHOST_ONLY", None)
    return env


def use_local_discovery() -> None:
    """Restrict the discovery of the nodes this process creates to the host (before rclpy.init)."""
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.pop("ROS_LOCALHOST_ONLY", None)


__all__ = ["MAX_DOMAIN_ID", "domain_id", "local_env", "use_local_discovery"]
