"""Machine description and load accounting shared by the benchmarks (DESIGN §6).

The benchmark machines are shared: other processes take CPU time while we measure, and a wall
time then says as much about them as about us. :class:`CpuMeter` therefore records, next to the
wall time, this process's CPU time (user + system, all threads) and the CPU time the *rest* of
the machine used over the same interval (``/proc/stat`` busy time minus ours). Our CPU time per
call does not depend on the others' load; the external share tells how loaded a run was.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

from glimpse_ros.runtime.precision import cpu_flags

# Flags worth naming next to an absolute figure (vector width, bf16/int8 arithmetic).
NOTABLE_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16",
                 "amx_int8")


def cpu_name() -> str:
    """CPU model from /proc/cpuinfo (falls back to platform.processor())."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def cpu_description() -> dict:
    """Name, x86 family/model (the name alone can be just "AMD EPYC") and notable flags."""
    info: dict = {"name": cpu_name(), "flags": sorted(set(NOTABLE_FLAGS) & cpu_flags())}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("cpu family", "model") and key.replace(" ", "_") not in info:
                info[key.replace(" ", "_")] = int(value)
    except (OSError, ValueError):
        pass
    return info


def _machine_busy_s() -> float:
    """Busy CPU seconds of the whole machine since boot (all CPUs, excluding idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = sum(fields[:8]) - fields[3] - fields[4]  # user..steal minus idle, iowait
    return busy / os.sysconf("SC_CLK_TCK")


@dataclass
class CpuSample:
    """Wall, own-CPU and machine-busy seconds at one instant."""

    wall: float
    own: float
    machine: float

    @classmethod
    def now(cls) -> "CpuSample":
        """Take a sample."""
        try:
            machine = _machine_busy_s()
        except (OSError, ValueError, IndexError):  # pragma: no cover - non-Linux
            machine = float("nan")
        return cls(time.perf_counter(), time.process_time(), machine)


class CpuMeter:
    """Accumulates wall and own CPU time of measured intervals, and the machine's other load."""

    def __init__(self) -> None:
        """Start empty."""
        self.wall_s = self.own_s = self.machine_s = 0.0
        self._start: CpuSample | None = None

    def __enter__(self) -> "CpuMeter":
        """Start an interval."""
        self._start = CpuSample.now()
        return self

    def __exit__(self, *exc: object) -> None:
        """End the interval and add it up."""
        end, start = CpuSample.now(), self._start
        self.wall_s += end.wall - start.wall
        self.own_s += end.own - start.own
        self.machine_s += end.machine - start.machine

    @property
    def external_load(self) -> float:
        """Cores' worth of CPU used by other processes during the intervals (0 = idle machine).

        ``/proc/stat`` counts in clock ticks (10 ms): meaningful over seconds, not single calls.
        """
        if self.wall_s <= 0:
            return 0.0
        return max(0.0, (self.machine_s - self.own_s) / self.wall_s)


__all__ = ["CpuMeter", "CpuSample", "NOTABLE_FLAGS", "cpu_description", "cpu_name"]
