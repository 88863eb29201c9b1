"""In-process reliability checks: streaming soak, fault injection and hostile model files.

Each function builds what it needs under ``tmp`` and returns plain numbers and messages
(JSON-ready); tests assert on them and ``python -m glimpse_ros.tools.reliability`` reports them.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from glimpse_ros.config import RecognizerConfig
from glimpse_ros.tools.reliability_harness import REPO, make_checkpoint, node_env


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
    """True when every tensor of a HeadState (or None) is finite."""
    import torch

    if state is None:
        return True
    tensors = [v for v in vars(state).values() if isinstance(v, torch.Tensor)]
    return all(bool(torch.isfinite(t.float()).all()) for t in tensors)


def soak(checkpoint: Path, num_frames: int, loops: int = 2, stride: int = 2, size=(24, 32),
         warmup_frames: int = 500) -> dict[str, Any]:
    """Stream ``num_frames`` frames in stream mode, replayed in ``loops`` loops of equal stamps.

    Checks every output and the head state for NaN/Inf, samples RSS, and counts the runtime's
    reset log lines (one per loop restart expected, nothing else).
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
                bad_state += not _state_finite(rec._state)
            if i == warmup_frames or i % 1000 == 999:
                rss_samples.append(rss_mb())
    finally:
        logging.getLogger("glimpse_ros").removeHandler(log)
    elapsed = time.perf_counter() - start
    resets = [m for m in log.messages if "reset" in m]
    return {"frames": num_frames, "outputs": outputs, "nonfinite_outputs": nonfinite,
            "nonfinite_states": bad_state, "loops": loops, "reset_log_lines": len(resets),
            "reset_lines": resets[:3], "seconds": round(elapsed, 1),
            "fps": round(num_frames / elapsed, 1),
            "rss_mb_after_warmup": round(rss_samples[0], 1),
            "rss_growth_mb": round(rss_samples[-1] - rss_samples[0], 1),
            "rss_samples_mb": [round(x, 1) for x in rss_samples]}


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


def malicious_pickles(tmp: Path) -> tuple[dict[str, Path], Path]:
    """Write pickle-based model files that create ``marker`` when unpickled.

    Returns ``{kind: path}`` (a raw pickle named .safetensors, a torch.save zip named .pt and
    .pth) and the marker path.
    """
    import torch

    marker = tmp / "PWNED"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    files = {"raw_pickle.safetensors": tmp / "evil.safetensors", "torch_zip.pt": tmp / "evil.pt",
             "torch_zip.pth": tmp / "evil.pth"}
    files["raw_pickle.safetensors"].write_bytes(pickle.dumps({"model": Payload()}))
    torch.save({"model": Payload()}, files["torch_zip.pt"])
    torch.save({"state_dict": Payload()}, files["torch_zip.pth"])
    return files, marker


def node_startup(model_path: Path | str, *params: str, timeout: float = 120) -> dict[str, Any]:
    """Start the node with ``model_path`` (and ``-p`` params) and report how start-up ended."""
    cmd = [sys.executable, "-m", "glimpse_ros.recognizer", "--ros-args", "-p",
           f"model_path:={model_path}", "-p", "backend:=torch"]
    for p in params:
        cmd += ["-p", p]
    proc = subprocess.run(cmd, cwd=REPO, env=node_env(230), capture_output=True, text=True,
                          timeout=timeout)
    out = proc.stdout + proc.stderr
    fatal = [ln for ln in out.splitlines() if "start-up failed" in ln]
    return {"returncode": proc.returncode, "message": (fatal[0] if fatal else out[-300:])[:400]}


def mismatched_checkpoint(tmp: Path) -> Path:
    """A safetensors file whose metadata announces 5 classes while its tensors have 4."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    good = make_checkpoint(tmp / "four.safetensors", num_classes=4, crop_size=32, resize_size=40)
    with safe_open(str(good), framework="pt") as f:
        meta = dict(f.metadata())
    cfg = json.loads(meta["model_config"])
    cfg["num_classes"] = 5
    meta["model_config"] = json.dumps(cfg)
    meta["labels"] = json.dumps([f"c{i}" for i in range(5)])
    path = tmp / "mismatched.safetensors"
    save_file(load_file(str(good)), str(path), metadata=meta)
    return path


def recognizer_error(checkpoint: Path, **config: Any) -> str:
    """The error message of building a Recognizer (``""`` when it builds)."""
    from glimpse_ros.runtime.recognizer import Recognizer

    try:
        Recognizer(RecognizerConfig(backend="torch", **config), checkpoint)
    except Exception as err:  # noqa: BLE001 - the message is the result
        return f"{type(err).__name__}: {err}"[:300]
    return ""


def parameter_error(name: str, value: Any, domain: int = 231) -> str:
    """Start-up error of a RecognizerNode given ``name:=value`` (``""`` when it starts).

    The recognizer factory records a call: a parameter error must come before the model is built.
    """
    import rclpy
    from rclpy.parameter import Parameter

    from glimpse_ros.ros.node import RecognizerNode

    built: list = []
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    try:
        node = RecognizerNode(recognizer_factory=built.append, context=context,
                              parameter_overrides=[Parameter(name, value=value)])
        node.destroy_node()
        return ""
    except ValueError as err:
        return ("AFTER MODEL BUILD: " if built else "") + str(err)[:300]
    finally:
        rclpy.shutdown(context=context)


__all__ = ["capture_log", "corrupt_onnx_cache", "corrupt_tensorrt_cache", "malicious_pickles",
           "mismatched_checkpoint", "node_startup", "parameter_error", "recognizer_error",
           "rss_mb", "soak"]
