"""GPU check (``make gpu-check``): AMP training, torchrun/nccl, evaluation, TensorRT, recognizer.

Marked ``gpu`` and skipped without CUDA, so ``make test`` on a CPU machine skips it. On a CUDA
machine it takes a few minutes (two TensorRT builds of the paper backbone dominate) and writes
its figures to ``gpu_check.json`` (``GPU_CHECK_OUT`` overrides the path): AMP step time and
images/s of both stages, TensorRT latency and deviation from torch in fp32 and fp16. With
``GPU_CHECK_STRICT=1`` (set by ``make gpu-check``) a missing ``tensorrt`` package fails instead of
skipping.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from glimpse_ros.config import ModelConfig, RecognizerConfig
from glimpse_ros.model.checkpoint import save_checkpoint
from glimpse_ros.model.glimpse_clouds import GlimpseClouds
from training.config import load_train_config
from training.engine import freeze_untrained, train_one_epoch

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

REPO = Path(__file__).resolve().parents[1]
RESULTS: dict = {}
# Deviation of TensorRT from torch, as max|diff| / max|torch| over Z (50 layers deep).
TOLERANCE = {"fp32": 2e-3, "fp16": 5e-2}


@pytest.fixture(scope="module", autouse=True)
def report():
    """Collect figures from every test and write gpu_check.json at the end."""
    RESULTS.clear()
    RESULTS["device"] = dict(name=torch.cuda.get_device_name(0), count=torch.cuda.device_count(),
                             torch=torch.__version__, cuda=torch.version.cuda)
    yield RESULTS
    path = Path(os.environ.get("GPU_CHECK_OUT", REPO / "gpu_check.json"))
    path.write_text(json.dumps(RESULTS, indent=1, default=str))


def _tensorrt():
    """The tensorrt module; a skip (or a failure with GPU_CHECK_STRICT=1) when missing."""
    try:
        import tensorrt
    except ImportError:
        if os.environ.get("GPU_CHECK_STRICT") == "1":
            pytest.fail("tensorrt is not installed (see docs/training.md, 'GPU setup')")
        pytest.skip("tensorrt is not installed")
    return tensorrt


class _RandomClips(torch.utils.data.Dataset):
    """Random clips with labels and joints in the training batch format (no disk)."""

    def __init__(self, cfg: ModelConfig, n: int) -> None:
        self.cfg, self.n, self.epoch = cfg, n, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        g = torch.Generator().manual_seed(i)
        c = self.cfg
        video = torch.randn(3, c.frames, c.crop_size, c.crop_size, generator=g)
        joints = torch.rand(c.frames, c.num_bodies, c.num_joints, 2, generator=g) * 2 - 1
        mask = torch.ones(c.frames, c.num_bodies, c.num_joints, dtype=torch.bool)
        return dict(video=video, label=i % c.num_classes, joints=joints, mask=mask, index=i)


@pytest.mark.parametrize("stage", ["global", "full"])
def test_amp_training_steps_one_gpu(stage):
    """Paper model (ResNet-50), AMP: train_one_epoch steps are finite and change the weights."""
    device = torch.device("cuda", 0)
    batch, warmup, timed = 4, 2, 6
    cfg = load_train_config(None, [f"stage={stage}", f"optim.batch_size={batch}",
                                   f"optim.max_steps={warmup + timed}", "progress=false",
                                   "pretrained_2d=none", "device=cuda", "log_every=1000"])
    mcfg = cfg.model_config(60)
    model = GlimpseClouds(mcfg).to(device)
    params = freeze_untrained(model, stage)
    opt = torch.optim.Adam(params, lr=1e-4)
    scaler = torch.amp.GradScaler("cuda")

    def loader(batches: int) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(_RandomClips(mcfg, batch * batches), batch_size=batch,
                                           generator=torch.Generator(), num_workers=4,
                                           pin_memory=True)

    before = [p.detach().clone() for p in params[-4:]]
    # Warm-up steps (cuDNN autotuning, allocator) are not timed.
    step, _ = train_one_epoch(model, loader(warmup), opt, scaler, cfg, device, 0, 0, None)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    step, stats = train_one_epoch(model, loader(timed), opt, scaler, cfg, device, 1, step, None)
    torch.cuda.synchronize()
    seconds = (time.perf_counter() - t0) / max(step - warmup, 1)
    assert step == warmup + timed and np.isfinite(stats["total"])
    assert any(not torch.equal(b, p) for b, p in zip(before, params[-4:]))
    RESULTS[f"train_{stage}"] = dict(
        model="paper (ResNet-50)", batch=batch, frames=mcfg.frames, crop=mcfg.crop_size,
        amp=True, step_s=round(seconds, 4), clips_per_s=round(batch / seconds, 2),
        images_per_s=round(batch * mcfg.frames / seconds, 1),
        max_memory_gb=round(torch.cuda.max_memory_allocated() / 2**30, 2),
        loss=round(float(stats["total"]), 4))


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="2")
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_torchrun_nccl_both_stages_and_evaluation(tmp_path):
    """Stage 1, stage 2 and --test-only under torchrun on every visible GPU (nccl, AMP)."""
    from training.ntu.prepare import prepare
    from training.synthetic.__main__ import main as synth_main
    from training.synthetic.actions import ACTION_NAMES

    gpus = torch.cuda.device_count()
    raw, prep = tmp_path / "raw", tmp_path / "prep"
    assert synth_main(["--out", str(raw), "--videos", str(12 * gpus), "--seed", "1",
                       "--width", "96", "--height", "72", "--frames", "8"]) == 0
    prepare(raw, raw, prep, 72, list(ACTION_NAMES), workers=4, dataset="synthetic")
    torchrun = [str(Path(sys.executable).with_name("torchrun")), "--standalone",
                "--nproc_per_node", str(gpus), str(REPO / "training" / "train.py")]
    common = ["--config", str(REPO / "config" / "train" / "synthetic.yaml"), f"data.root={prep}",
              "data.protocol=cv", "data.val_fraction=0.2", "data.num_workers=2",
              "optim.batch_size=2", "progress=false", "amp=true", "device=cuda",
              "model={frames: 8, crop_size: 64, resize_size: 72}"]
    timings = {}
    for stage, extra in (("global", []), ("full", [f"init={tmp_path / 'g' / 'best.pt'}"])):
        out = tmp_path / stage[0]
        t0 = time.monotonic()
        run = _run(torchrun + common + [f"stage={stage}", f"out_dir={out}", "optim.epochs=2"]
                   + extra, timeout=240)
        timings[stage] = round(time.monotonic() - t0, 1)
        assert run.returncode == 0, run.stderr[-4000:]
        assert "device cuda:0" in run.stderr and "Training runs on the CPU" not in run.stderr
        sync = json.loads((out / "rank_params.json").read_text())
        assert sync["in_sync"] and len(sync["digests"]) == gpus
    test = _run(torchrun + ["--test-only", "--checkpoint", str(tmp_path / "f" / "best.pt")],
                timeout=120)
    assert test.returncode == 0, test.stderr[-4000:]
    report = json.loads((tmp_path / "f" / "test" / "results.json").read_text())
    assert report["model"] == "glimpse_clouds" and report["samples"] > 0
    RESULTS["torchrun_nccl"] = dict(gpus=gpus, seconds=timings, test_top1=report["top1"])


def _calibrated_backbone(cfg: ModelConfig) -> torch.nn.Module:
    """A random-weight backbone whose BatchNorm statistics come from data, in eval mode."""
    torch.manual_seed(0)
    backbone = GlimpseClouds(cfg).backbone.cuda()
    for m in backbone.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.momentum = None              # cumulative average over the calibration passes
    backbone.train()
    with torch.no_grad():
        for _ in range(3):
            backbone(torch.randn(2, 3, cfg.frames, cfg.crop_size, cfg.crop_size, device="cuda"))
    return backbone.eval()


def _latency_ms(fn, x, repeats: int = 20) -> float:
    """Median wall time of ``fn(x)`` (numpy in, numpy out: copies included) in ms."""
    fn(x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t0)
    return round(1000 * float(np.median(times)), 3)


def test_tensorrt_parity_latency_and_cache(tmp_path):
    """Paper backbone: ONNX -> TensorRT fp32/fp16 match torch fp32; the cache loads/rebuilds."""
    _tensorrt()
    from glimpse_ros.runtime.export.clip import compare, export_backbone
    from glimpse_ros.runtime.tensorrt_engine import TensorRTEngine
    from glimpse_ros.runtime.torch_engine import TorchEngine

    cfg = ModelConfig(num_classes=60)
    backbone = _calibrated_backbone(cfg)
    shape = (1, 3, cfg.frames, cfg.crop_size, cfg.crop_size)
    onnx_path = export_backbone(backbone, tmp_path / "backbone.onnx", shape)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    tf32 = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        ref = TorchEngine(backbone, "fp32")
        z_ref, c_ref = ref.run(x)
        figures = {"torch_fp32_ms": _latency_ms(ref.run, x)}
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
    figures["torch_fp16_ms"] = _latency_ms(TorchEngine(backbone, "fp16").run, x)
    for precision in ("fp32", "fp16"):
        t0 = time.monotonic()
        engine = TensorRTEngine(onnx_path, precision, tmp_path / "cache", shape)
        build_s = round(time.monotonic() - t0, 1)
        assert engine.decision == "built"
        z, c = engine.run(x)
        dz, dc = compare(z_ref, z), compare(c_ref, c)
        figures[precision] = dict(build_s=build_s, latency_ms=_latency_ms(engine.run, x),
                                  z_relative=dz["relative"], c_relative=dc["relative"])
        assert dz["relative"] < TOLERANCE[precision], (precision, dz)
        assert dc["relative"] < TOLERANCE[precision], (precision, dc)
        del engine
    # The cache: a second engine loads; a corrupt file is rebuilt, and the rebuilt one matches.
    again = TensorRTEngine(onnx_path, "fp16", tmp_path / "cache", shape)
    assert again.decision == "loaded"
    path = again.cache.engine_path(next(p.stem for p in again.cache.root.glob("*.engine")
                                        if json.loads(p.with_suffix(".json").read_text())
                                        ["precision"] == "fp16"))
    del again
    path.write_bytes(b"not an engine" * 100)
    rebuilt = TensorRTEngine(onnx_path, "fp16", tmp_path / "cache", shape)
    assert rebuilt.decision == "rebuilt"
    assert compare(z_ref, rebuilt.run(x)[0])["relative"] < TOLERANCE["fp16"]
    RESULTS["tensorrt"] = dict(model="paper backbone (ResNet-50, 8x224x224, batch 1)",
                               tensorrt=str(_tensorrt().__version__), **figures)


def test_recognizer_on_tensorrt_backend(tmp_path):
    """The Recognizer on ``tensorrt`` (fp32) gives the torch backend's probabilities."""
    _tensorrt()
    from glimpse_ros.runtime.recognizer import Recognizer

    torch.manual_seed(0)
    cfg = ModelConfig.small(num_classes=4, frames=4, crop_size=64, resize_size=72)
    path = tmp_path / "small.safetensors"
    save_checkpoint(path, GlimpseClouds(cfg).eval(), ["a", "b", "c", "d"])
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(10)]
    probs = {}
    for backend in ("torch", "tensorrt"):
        rec = Recognizer(RecognizerConfig(backend=backend, precision="fp32", smoothing=0.0,
                                          stride=2, engine_cache_dir=str(tmp_path / "cache")),
                         path)
        assert rec.backend_name == backend
        out = [r for i, f in enumerate(frames) for r in rec.push(f, i * 0.04)]
        probs[backend] = np.stack([r.probs for r in out])
    assert probs["torch"].shape == probs["tensorrt"].shape and len(probs["torch"]) >= 4
    np.testing.assert_allclose(probs["tensorrt"], probs["torch"], atol=2e-4)
    RESULTS["recognizer_tensorrt"] = dict(frames=len(probs["torch"]), max_abs_prob_diff=float(
        np.abs(probs["tensorrt"] - probs["torch"]).max()))
