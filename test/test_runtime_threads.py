"""Engine thread counts the recognizer applies: cores - 1 by default, the configured count else."""

from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")

from glimpse_ros.config import RecognizerConfig  # noqa: E402
from glimpse_ros.runtime.factory import module_installed  # noqa: E402
from glimpse_ros.runtime.threads import head_threads, shared_process_threads  # noqa: E402

CORES = len(os.sched_getaffinity(0))


def engine_threads_applied(engine) -> int:
    """The thread count the engine object itself runs with, read back from its library."""
    if engine.name == "torch":
        return torch.get_num_threads()
    if engine.name == "onnxruntime":
        return engine.session.get_session_options().intra_op_num_threads
    if engine.name == "openvino":
        return int(engine._compiled.get_property("INFERENCE_NUM_THREADS"))
    raise AssertionError(engine.name)


def test_default_leaves_one_core_and_never_goes_below_one() -> None:
    """Cores - 1, at least 1."""
    assert [shared_process_threads(n) for n in (1, 2, 3, 16)] == [1, 1, 2, 15]
    assert shared_process_threads() == max(1, CORES - 1)


@pytest.mark.parametrize("backend", ["torch", "onnxruntime", "openvino"])
@pytest.mark.parametrize("requested", [0, CORES])
def test_recognizer_applies_its_thread_count_to_the_engine(backend, requested, tmp_path) -> None:
    """num_threads 0 -> cores - 1 in the engine (and torch's process-wide count), else as set."""
    if not module_installed(backend):
        pytest.skip(f"{backend} not installed")
    from glimpse_ros.runtime.recognizer import Recognizer

    rec = Recognizer(RecognizerConfig(backend=backend, num_threads=requested,
                                      engine_cache_dir=str(tmp_path)))
    expected = requested or max(1, CORES - 1)
    assert rec.engine_threads == expected
    assert engine_threads_applied(rec.engine) == expected
    assert torch.get_num_threads() == expected  # the torch engine and head_threads start here


def test_head_threads_switches_to_one_and_back() -> None:
    """The head runs with one torch thread; the engine's count is restored afterwards."""
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with head_threads():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
