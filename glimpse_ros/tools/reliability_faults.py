"""In-process reliability checks: soak, reset flood, corrupt engine caches, start-up faults.

Each function builds what it needs under ``tmp`` and returns plain numbers and messages
(JSON-ready); tests assert on them and ``python -m glimpse_ros.tools.reliability`` reports them.
The hostile model files these checks feed to the recognizer are made in
:mod:`glimpse_ros.tools.reliability_model_files`.
"""

from __future__ import annotations

import logging
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from glimpse_ros.config import RecognizerConfig
from glimpse_ros.ros.discovery import domain_id
from glimpse_ros.tools.reliability_harness import REPO, node_env


class _Records(logging.Handler):
    """Collects the messages of a logger while installed."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.levelname}: {record.getMessage()}")


def capture_log(name: str = "glimpse_ros") -> _Records:
    """Install a collecting handler on logger ``name`` (INFO and up); remove it yourself."""
    handler = _Records()
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return handler


def rss_mb() -> float:
    """Current resident set size of this process in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _state_finite(state: Any) -> bool:
    """True when every tensor of a head state (HeadState, exported-graph dict, None) is finite."""
    if state is None:
        return True
    values = state.values() if isinstance(state, dict) else vars(state).values()
    return all(bool(np.isfinite(np.asarray(v, dtype=np.float64)).all()) for v in values
               if hasattr(v, "shape"))


def soak(checkpoint: Path, num_frames: int, loops: int = 2, stride: int = 2, size=(24, 32),
         warmup_frames: int = 500) -> dict[str, Any]:
    """Stream ``num_frames`` frames in stream mode, replayed in ``loops`` loops of equal stamps.

    Checks every output and the head state for NaN/Inf, samples RSS, and counts the
    recognizer's resets by kind (one time jump per loop restart expected, nothing else) and its
    reset log lines (at most one per kind and second, so fewer than the resets when loops are
    short; every line names the backwards jump).
    """
    from glimpse_ros.runtime.recognizer import Recognizer

    rec = Recognizer(RecognizerConfig(backend="torch", num_threads=1, stride=stride,
                                      head_mode="stream"), checkpoint)
    rng = np.random.default_rng(0)
    pool = [rng.integers(0, 256, (*size, 3), dtype=np.uint8) for _ in range(16)]
    per_loop = num_frames // loops
    log = capture_log()
    outputs = nonfinite = bad_state = 0
    rss_samples: list[float] = []
    start = time.perf_counter()
    try:
        for i in range(num_frames):
            stamp = 1000.0 + (i % per_loop) / 30.0  # loops restart at the same stamp
            for r in rec.push(pool[i % len(pool)], stamp):
                outputs += 1
                arrays = (r.probs, r.glimpses, r.boxes, np.array([p for _, p in r.top_k]))
                nonfinite += not all(np.isfinite(a).all() for a in arrays)
            if i % stride == stride - 1:
                bad_state += not _state_finite(rec.head_runner.state)
            if i == warmup_frames or i % 1000 == 999:
                rss_samples.append(rss_mb())
    finally:
        logging.getLogger("glimpse_ros").removeHandler(log)
    elapsed = time.perf_counter() - start
    resets = [m for m in log.messages if "reset" in m]
    return {"frames": num_frames, "outputs": outputs, "nonfinite_outputs": nonfinite,
            "nonfinite_states": bad_state, "loops": loops, "reset_log_lines": len(resets),
            "resets": {str(getattr(k, "value", k)): int(v) for k, v in rec.reset_reasons.items()},
            "reset_lines": resets[:3], "seconds": round(elapsed, 1),
            "fps": round(num_frames / elapsed, 1),
            "rss_mb_after_warmup": round(rss_samples[0], 1),
            "rss_growth_mb": round(rss_samples[-1] - rss_samples[0], 1),
            "rss_samples_mb": [round(x, 1) for x in rss_samples]}


def reset_flood(checkpoint: Path, num_frames: int = 50_000) -> dict[str, Any]:
    """Stamps alternating 0 / 100 s: every frame resets (gap, time jump). Reports what grew."""
    import gc
    import tracemalloc

    from glimpse_ros.runtime.recognizer import Recognizer

    rec = Recognizer(RecognizerConfig(backend="torch", num_threads=1, stride=1), checkpoint)
    img = np.zeros((8, 8, 3), np.uint8)
    logging.getLogger("glimpse_ros").setLevel(logging.ERROR)  # the log is throttled anyway
    try:
        for i in range(1000):
            rec.push(img, 100.0 * (i % 2))
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        start = time.perf_counter()
        for i in range(1000, num_frames):
            rec.push(img, 100.0 * (i % 2))
        elapsed = time.perf_counter() - start
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
    finally:
        logging.getLogger("glimpse_ros").setLevel(logging.INFO)
    return {"frames": num_frames, "resets": rec.counters["resets"],
            "reset_keys": len(rec.reset_reasons),
            "by_kind": {k.value: n for k, n in rec.reset_reasons.items()},
            "python_heap_growth_kb": round(grown / 1024, 1),
            "us_per_frame": round(elapsed / (num_frames - 1000) * 1e6, 1)}


def corrupt_onnx_cache(checkpoint: Path, cache_dir: Path, backend: str = "onnxruntime"
                       ) -> dict[str, Any]:
    """Build the ONNX cache, overwrite it with garbage, build the Recognizer again."""
    from glimpse_ros.runtime.recognizer import Recognizer

    cfg = RecognizerConfig(backend=backend, num_threads=1, engine_cache_dir=str(cache_dir))
    Recognizer(cfg, checkpoint)
    files = sorted(cache_dir.rglob("*.onnx"))
    for f in files:
        f.write_bytes(b"not an onnx file" + os.urandom(64))
    log = capture_log()
    try:
        rec = Recognizer(cfg, checkpoint)
        rng = np.random.default_rng(0)
        results = []
        for i in range(rec.frames):
            results += rec.push(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), i / 30)
        outcome, error = f"recovered ({rec.backend_name})", ""
        recovered = bool(results)
    except Exception as err:  # noqa: BLE001 - reported, the test asserts on it
        outcome, error, recovered = "failed", f"{type(err).__name__}: {err}", False
    finally:
        logging.getLogger("glimpse_ros").removeHandler(log)
    return {"corrupted_files": len(files), "recovered": recovered, "outcome": outcome,
            "error": error[:300], "log": [m for m in log.messages if "onnx" in m.lower()][:3]}


def corrupt_tensorrt_cache(cache_dir: Path) -> dict[str, Any]:
    """A cached TensorRT engine that fails to deserialize is deleted, rebuilt and logged."""
    from glimpse_ros.runtime.trt_cache import EngineCache

    cache = EngineCache(cache_dir)
    key = "k" * 64
    cache.store(key, b"garbage engine bytes", {})

    def deserialize(blob: bytes):
        if blob != b"good engine":
            raise RuntimeError("serialization assertion failed")
        return "engine"

    log = capture_log()
    try:
        result = cache.load_or_build(key, deserialize, lambda: b"good engine", {})
    finally:
        logging.getLogger("glimpse_ros").removeHandler(log)
    return {"decision": result.decision, "engine_ok": result.engine == "engine",
            "log": [m for m in log.messages if "TensorRT" in m][:3]}


# Logged by the Recognizer once the model is loaded and the engine built.
MODEL_LOADED = "classes, backend"


def _node_cmd(model_path: Path | str, params: tuple[str, ...], args: tuple[str, ...]) -> list:
    cmd = [sys.executable, "-m", "glimpse_ros.recognizer", "--ros-args", "-p",
           f"model_path:={model_path}", "-p", "backend:=torch", *args]
    for p in params:
        cmd += ["-p", p]
    return cmd


def node_startup(model_path: Path | str, *params: str, args: tuple[str, ...] = (),
                 timeout: float = 120, domain: int | None = None) -> dict[str, Any]:
    """Start the node with ``model_path`` (``-p`` params, other ``--ros-args`` ``args``).

    Returns the exit code, the fatal line (or the output's tail), whether a traceback was
    printed and whether the model had been loaded.
    """
    domain = domain_id(230, 232) if domain is None else domain
    proc = subprocess.run(_node_cmd(model_path, params, args), cwd=REPO, env=node_env(domain),
                          capture_output=True, text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    fatal = [ln for ln in out.splitlines() if "start-up failed" in ln]
    return {"returncode": proc.returncode, "message": (fatal[0] if fatal else out[-300:])[:400],
            "traceback": "Traceback" in out, "model_loaded": MODEL_LOADED in out}


def params_files(tmp: Path) -> dict[str, Path]:
    """Parameter files the node must refuse at start-up: non-UTF-8, a directory, missing."""
    latin1 = tmp / "latin1.yaml"
    latin1.write_bytes(b"/**:\n  ros__parameters:\n    image_topic: \"cam\xe9ra\"\n")
    folder = tmp / "params_dir.yaml"
    folder.mkdir(exist_ok=True)
    return {"non_utf8": latin1, "directory": folder, "missing": tmp / "missing_params.yaml"}


def sigint_during_startup(model_path: Path | str, after: str | float,
                          timeout: float = 120, domain: int | None = None) -> dict[str, Any]:
    """Send SIGINT to a starting node: ``after`` seconds, or once a line containing ``after``.

    Returns the exit code, whether a traceback was printed, whether the model had been loaded
    and the seconds from SIGINT to exit.
    """
    domain = domain_id(230, 232) if domain is None else domain
    proc = subprocess.Popen(_node_cmd(model_path, (), ()), cwd=REPO, env=node_env(domain),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    if isinstance(after, str):
        for line in proc.stdout:
            lines.append(line)
            if after in line:
                break
    else:
        time.sleep(after)
    proc.send_signal(2)
    sent = time.monotonic()
    try:
        rest, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        rest, _ = proc.communicate()
    out = "".join(lines) + rest
    return {"returncode": proc.returncode, "traceback": "Traceback" in out,
            "model_loaded": MODEL_LOADED in out, "exit_s": round(time.monotonic() - sent, 2),
            "tail": out[-300:]}


def recognizer_error(checkpoint: Path, **config: Any) -> str:
    """The error message of building a Recognizer (``""`` when it builds)."""
    from glimpse_ros.runtime.recognizer import Recognizer

    try:
        Recognizer(RecognizerConfig(backend="torch", **config), checkpoint)
    except Exception as err:  # noqa: BLE001 - the message is the result
        return f"{type(err).__name__}: {err}"[:300]
    return ""


def parameter_error(name: str, value: Any, domain: int | None = None) -> str:
    """Start-up error of a RecognizerNode given ``name:=value`` (``""`` when it starts).

    The recognizer factory records a call: a parameter error must come before the model is built.
    """
    import rclpy
    from rclpy.parameter import Parameter

    from glimpse_ros.ros.node import RecognizerNode

    built: list = []
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_id(230, 232) if domain is None else domain)
    try:
        node = RecognizerNode(recognizer_factory=built.append, context=context,
                              parameter_overrides=[Parameter(name, value=value)])
        node.destroy_node()
        return ""
    except ValueError as err:
        return ("AFTER MODEL BUILD: " if built else "") + str(err)[:300]
    finally:
        rclpy.shutdown(context=context)


__all__ = ["capture_log", "corrupt_onnx_cache", "corrupt_tensorrt_cache", "node_startup",
           "parameter_error", "params_files", "recognizer_error", "reset_flood", "rss_mb",
           "sigint_during_startup", "soak"]
