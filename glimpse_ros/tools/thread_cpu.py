"""CPU time per thread of this process, from ``/proc/self/task`` (Linux), named for people.

Used by the demo's verdict and the in-process benchmark row to say which thread used the CPU:
Python threads are named by their ``threading`` name (``inference``, ``replay``, the executor's
workers), threads without a Python name (the engines' native pools: OpenVINO's TBB, torch's
OpenMP, ONNX Runtime's intra-op threads) by their OS name, grouped as ``native: <comm>``.
"""

from __future__ import annotations

import collections
import os
import re
import threading
from pathlib import Path

TASKS = Path("/proc/self/task")


def _ticks() -> int:
    try:
        return os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-Linux
        return 100


def thread_cpu_seconds() -> dict[int, float]:
    """``{native thread id: user + system CPU seconds}`` of the threads alive now (Linux)."""
    out: dict[int, float] = {}
    tick = _ticks()
    try:
        tids = [int(t) for t in os.listdir(TASKS)]
    except OSError:
        return out
    for tid in tids:
        try:
            fields = (TASKS / str(tid) / "stat").read_text().rsplit(")", 1)[1].split()
            out[tid] = (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):  # the thread ended meanwhile
            pass
    return out


def thread_names() -> dict[int, str]:
    """``{native thread id: name}``: Python threads by name, the others ``native: <comm>``."""
    names = {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}
    try:
        tids = [int(t) for t in os.listdir(TASKS)]
    except OSError:
        return names
    for tid in tids:
        if tid not in names:
            try:
                comm = (TASKS / str(tid) / "comm").read_text().strip()
            except OSError:
                continue
            # DDS threads carry a port or an index (dds.udp.7411): one group per kind
            names[tid] = "native: " + re.sub(r"[.\d]+$", "", comm) if comm.startswith("dds") \
                else f"native: {comm}"
    return names


class ThreadCpu:
    """CPU seconds per thread between :meth:`start` and :meth:`stop`, grouped by name.

    Threads that start in between count from zero; a thread that ends before ``stop`` keeps the
    last value :meth:`sample` saw (call it now and then during the run).
    """

    def __init__(self) -> None:
        """Nothing measured yet."""
        self._start: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._names: dict[int, str] = {}

    def start(self) -> None:
        """Take the starting point."""
        self._start = thread_cpu_seconds()
        self._last = dict(self._start)
        self._names = thread_names()

    def sample(self) -> None:
        """Remember the current values and names (threads may end before :meth:`stop`)."""
        self._last.update(thread_cpu_seconds())
        self._names.update(thread_names())

    def stop(self) -> dict[str, float]:
        """``{thread name: CPU seconds since start}``, largest first; numbered workers grouped.

        Executor workers (``ThreadPoolExecutor-1_0``...) are summed as ``executor workers``.
        """
        self.sample()
        by_name: collections.Counter[str] = collections.Counter()
        for tid, cpu in self._last.items():
            name = self._names.get(tid, "native: ?")
            if name.startswith("ThreadPoolExecutor-"):
                name = "executor workers"
            by_name[name] += cpu - self._start.get(tid, 0.0)
        return {k: round(v, 3) for k, v in by_name.most_common() if v > 0}


__all__ = ["ThreadCpu", "thread_cpu_seconds", "thread_names"]
