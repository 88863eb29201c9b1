"""Thread counts of the recognizer: its backbone engine's and its head's (no ROS import).

torch's intra-op thread count is process-wide: the torch engine runs with the engine count and
the eager head switches to HEAD_THREADS around its steps (:func:`head_threads`). No torch
import at module level: the torch-free runtime (model bundles) uses this module too.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from glimpse_ros.runtime.engine import cpu_count

# The head is a chain of batch-1 matrix-vector products and small ops: extra torch threads only
# add synchronisation. Measured on the 2-core reference machine while other jobs ran: ResNet-50
# head 46 ms/frame with 1 thread vs 264 ms with 2 (`make bench`). Engines: shared_process_threads.
HEAD_THREADS = 1


def exported_head_threads(engine: str, engine_threads: int) -> int:
    """Threads of the exported head step on ``engine``: the backbone engine's on OpenVINO.

    The head runs after the backbone's step, so the backbone's threads are idle then. At batch 1
    the paper-size head reads its weights from memory (the backbone's step evicts them from the
    cache), and OpenVINO's second thread reads in parallel: in the Recognizer (ResNet-50, int8
    backbone, 2 Zen 4 cores, round robin) the int8-weight head took 2.54 ms per frame on 2
    threads vs 3.39 on 1, the fp32 head 6.52 vs 7.98; the small model's head 0.41 vs 0.38 ms.
    ONNX Runtime's pool spins between ops next to the backbone session's: its fp32 head took
    17.5 ms on 2 threads vs 10.9 on 1, so it keeps :data:`HEAD_THREADS`.
    """
    return engine_threads if engine == "openvino" else HEAD_THREADS


def shared_process_threads(cores: int | None = None) -> int:
    """Engine threads of a recognizer that shares its process and cores: ``cores - 1``, >= 1.

    A recognizer never has the process to itself: the ROS executor, a camera or replay and a
    consumer run Python threads next to it, and on a small machine other processes too. An
    engine pool sized to every core competes with them: torch's OpenMP team waits at each op's
    barrier for a worker the scheduler has put aside, ONNX Runtime's workers spin between ops,
    and either way the Python threads (which hold the GIL the inference thread needs between
    native calls) get less CPU. Measured on 2 cores in the one-process demo (docs/measurements.md):
    torch p50 latency 57 ms with 2 threads vs 17 ms with 1; ONNX Runtime 35-52 ms of process
    CPU per frame with 2 threads (its spinning pool) vs 17-19 ms with 1.
    """
    return max(1, (cores if cores is not None else cpu_count()) - 1)


@contextlib.contextmanager
def head_threads() -> Iterator[None]:
    """Run the head with HEAD_THREADS torch threads (no switch when the count already is)."""
    import torch  # here, not at module level: a torch-free runtime (model bundle) uses this module

    threads = torch.get_num_threads()
    if threads == HEAD_THREADS:
        yield
        return
    torch.set_num_threads(HEAD_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


__all__ = ["HEAD_THREADS", "exported_head_threads", "head_threads", "shared_process_threads"]
