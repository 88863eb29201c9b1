"""Model bundles: written from a checkpoint, run by the Recognizer in a process without torch.

The torch-free run is a subprocess whose ``import torch`` fails (a meta-path finder installed by
a ``sitecustomize`` on its PYTHONPATH, as if torch were not installed); its outputs must equal
the in-process Recognizer on the checkpoint with the same engine (exported head, same graphs).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from glimpse_ros.config import ModelConfig
from glimpse_ros.model.checkpoint import save_checkpoint
from glimpse_ros.model.glimpse_clouds import GlimpseClouds
from glimpse_ros.runtime.bundle import MANIFEST, load_bundle
from glimpse_ros.runtime.export.bundle import write_bundle
from runtime_fixtures import make_recognizer as make, random_frames

REPO = Path(__file__).resolve().parents[1]
CFG = ModelConfig.small(num_classes=5, frames=4, crop_size=64, resize_size=72, memory_slots=3)
BLOCKER = '''
import importlib.abc, sys
class _NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
        return None
sys.meta_path.insert(0, _NoTorch())
'''
SCRIPT = '''
import json, sys
import numpy as np
try:
    import torch  # noqa: F401
    blocked = False
except ImportError:
    blocked = True
from glimpse_ros.config import RecognizerConfig
from glimpse_ros.runtime.recognizer import Recognizer
bundle, backend, cache = sys.argv[1:4]
rec = Recognizer(RecognizerConfig(backend=backend, smoothing=0.0, num_threads=1,
                                  stride=2, engine_cache_dir=cache), bundle)
rng = np.random.default_rng(0)
frames = [rng.integers(0, 256, (24, 32, 3), dtype=np.uint8) for _ in range(14)]
out = []
for i, f in enumerate(frames):
    if i == 9:
        rec.reset()
    out += [[r.probs.tolist(), r.glimpses.tolist()] for r in rec.push(f, i / 30.0)]
print(json.dumps({"blocked": blocked, "torch_loaded": "torch" in sys.modules,
                  "head": rec.head_runner.name, "backend": rec.backend_name, "out": out}))
'''


def _checkpoint(tmp_path: Path, padding: str) -> Path:
    torch.manual_seed(2)
    model = GlimpseClouds(dataclasses.replace(CFG, temporal_padding=padding)).eval()
    with torch.no_grad():
        model.head.memory.initial_logits.normal_()
    return save_checkpoint(tmp_path / f"{padding}.safetensors", model,
                           [f"c{i}" for i in range(CFG.num_classes)])


def _in_process(checkpoint: Path, backend: str, cache: Path) -> list:
    rec = make(checkpoint, backend=backend, stride=2, engine_cache_dir=str(cache))
    assert rec.head_runner.name == backend
    out = []
    for i, f in enumerate(random_frames(14)):
        if i == 9:
            rec.reset()
        out += [[r.probs, r.glimpses] for r in rec.push(f, i / 30.0)]
    return out


def _torch_free(bundle: Path, backend: str, tmp_path: Path) -> dict:
    blocker = tmp_path / "no_torch"
    blocker.mkdir(exist_ok=True)
    (blocker / "sitecustomize.py").write_text(BLOCKER)
    env = dict(os.environ, PYTHONPATH=f"{blocker}{os.pathsep}{REPO}")
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(bundle), backend,
                           str(tmp_path / "cache_sub")], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("padding", ["causal", "symmetric"])
@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_bundle_runs_without_torch_and_equals_the_checkpoint(tmp_path, backend,
                                                             padding) -> None:
    pytest.importorskip(backend)
    ckpt = _checkpoint(tmp_path, padding)
    bundle = write_bundle(ckpt, tmp_path / "bundle")
    assert sorted(p.name for p in bundle.iterdir()) == sorted(
        ["backbone.onnx", "head.onnx", "labels.json", "model_config.json", MANIFEST])
    got = _torch_free(bundle, backend, tmp_path)
    assert got["blocked"] and not got["torch_loaded"]
    assert got["head"] == got["backend"] == backend
    want = _in_process(ckpt, backend, tmp_path / "cache")
    windowed = 8 + 4  # 9 frames, reset, 5 frames: stride-2 windows of 4
    assert len(got["out"]) == len(want) == (14 if padding == "causal" else windowed)
    for (probs, glimpses), (p, g) in zip(got["out"], want):
        np.testing.assert_allclose(probs, p, rtol=0, atol=1e-5)
        np.testing.assert_allclose(glimpses, g, rtol=0, atol=1e-5)


def test_damaged_or_incomplete_bundle_is_refused(tmp_path) -> None:
    pytest.importorskip("onnxruntime")
    bundle = write_bundle(_checkpoint(tmp_path, "causal"), tmp_path / "bundle")
    assert load_bundle(bundle).config.causal
    head = bundle / "head.onnx"
    data = bytearray(head.read_bytes())
    data[len(data) // 2] ^= 1
    head.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="head.onnx: sha256"):
        make(bundle, backend="onnxruntime")
    (bundle / MANIFEST).unlink()
    with pytest.raises(ValueError, match="not a model bundle"):
        make(bundle, backend="onnxruntime")


def test_bundle_refuses_what_needs_torch(tmp_path) -> None:
    pytest.importorskip("onnxruntime")
    bundle = write_bundle(_checkpoint(tmp_path, "causal"), tmp_path / "bundle")
    with pytest.raises(ValueError, match="recognizer.backend"):
        make(bundle, backend="torch")
    with pytest.raises(ValueError, match="recognizer.head_engine"):
        make(bundle, backend="onnxruntime", head_engine="torch")
    with pytest.raises(ValueError, match="recognizer.head_engine"):
        make(bundle, backend="onnxruntime", head_precision="int8")


def test_export_cli_writes_a_loadable_bundle(tmp_path, capsys) -> None:
    from glimpse_ros.tools.export import main

    ckpt = _checkpoint(tmp_path, "symmetric")
    assert main(["--checkpoint", str(ckpt), "--bundle", str(tmp_path / "b")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["backbone"] == "clip" and report["classes"] == CFG.num_classes
    bundle = load_bundle(tmp_path / "b")
    assert bundle.labels == [f"c{i}" for i in range(CFG.num_classes)]
    assert bundle.config == dataclasses.replace(CFG, temporal_padding="symmetric")
    assert main(["--checkpoint", str(tmp_path / "nope.safetensors"),
                 "--bundle", str(tmp_path / "c")]) == 2
