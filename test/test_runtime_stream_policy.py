"""Time and size churn: jitter dropped, size changes continue, resets bounded by kind."""

from __future__ import annotations

import gc
import tracemalloc

import numpy as np
import pytest
import torch

from glimpse_ros.config import ModelConfig, RecognizerConfig
from glimpse_ros.model.checkpoint import save_checkpoint
from glimpse_ros.model.glimpse_clouds import GlimpseClouds
from glimpse_ros.runtime.recognizer import Recognizer
from glimpse_ros.runtime.stream_policy import Action, ResetKind, decide

T = 4


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A small random model, T = 4, 32x32 crops."""
    torch.manual_seed(0)
    cfg = ModelConfig.small(num_classes=3, frames=T, crop_size=32, resize_size=40)
    path = tmp_path_factory.mktemp("ckpt") / "small.safetensors"
    return save_checkpoint(path, GlimpseClouds(cfg).eval(), ["a", "b", "c"])


def make(checkpoint, **kw) -> Recognizer:
    """Torch backend, one thread, no smoothing."""
    return Recognizer(RecognizerConfig(backend="torch", num_threads=1, smoothing=0.0, **kw),
                      checkpoint)


def images(n: int, hw=(24, 32), seed: int = 0) -> list[np.ndarray]:
    """Random uint8 RGB frames."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (*hw, 3), dtype=np.uint8) for _ in range(n)]


@pytest.mark.parametrize("last,stamp,action,kind", [
    (None, 5.0, Action.CONTINUE, None), (1.0, 1.0, Action.CONTINUE, None),
    (1.0, 1.04, Action.CONTINUE, None), (1.0, 0.999, Action.DROP, None),
    (1.0, 0.995, Action.DROP, None), (1.0, 0.99, Action.RESET, ResetKind.TIME_JUMP),
    (1.0, 3.5, Action.RESET, ResetKind.GAP), (1.0, 3.0, Action.CONTINUE, None)])
def test_decide_table(last, stamp, action, kind) -> None:
    """Jitter up to 5 ms backwards drops, more resets (time jump), > max_gap_s resets (gap)."""
    decision = decide(last, stamp, max_gap_s=2.0, jitter_s=0.005)
    assert (decision.action, decision.kind) == (action, kind)


def test_decide_refuses_non_finite() -> None:
    """A NaN stamp is a caller error."""
    with pytest.raises(ValueError, match="finite"):
        decide(1.0, float("nan"), 2.0, 0.005)


def test_stamps_stepping_back_1ms_every_third_frame_still_give_output(checkpoint) -> None:
    """Every third frame 1 ms older than its predecessor: dropped, counted, no reset.

    The outputs equal those of a stream that never contained the jittered frames.
    """
    imgs = images(24)
    stamps = []
    for i in range(24):
        stamps.append(stamps[-1] - 0.001 if i % 3 == 2 else i * 0.04)
    rec = make(checkpoint, stride=2)
    out = [r for img, s in zip(imgs, stamps) for r in rec.push(img, s)]
    assert rec.counters["jitter_dropped"] == 8 and rec.counters["resets"] == 0
    clean = make(checkpoint, stride=2)
    ref = [r for i, (img, s) in enumerate(zip(imgs, stamps)) if i % 3 != 2
           for r in clean.push(img, s)]
    assert len(out) == len(ref) == 16
    for a, b in zip(out, ref):
        assert a.stamp == b.stamp
        np.testing.assert_allclose(a.probs, b.probs, rtol=0, atol=1e-6)


def test_backwards_step_beyond_tolerance_resets_as_time_jump(checkpoint) -> None:
    """10 ms back with a 5 ms tolerance starts a new sequence."""
    rec = make(checkpoint, stride=1, stamp_jitter_s=0.005)
    for i, img in enumerate(images(3)):
        rec.push(img, 1.0 + i * 0.04)
    rec.push(images(1)[0], 1.07)
    assert rec.reset_reasons == {ResetKind.TIME_JUMP: 1}
    assert "backwards" in rec.last_reset_reason


def test_frame_size_alternating_every_frame_still_gives_output(checkpoint) -> None:
    """Sizes alternate between 24x32 and 40x30: no reset, one output per frame after the window.

    Each frame's boxes are in its own pixels: within its width/height.
    """
    rec = make(checkpoint, stride=1)
    sizes = [(24, 32), (40, 30)]
    out = []
    for i in range(12):
        hw = sizes[i % 2]
        for r in rec.push(images(1, hw=hw, seed=i)[0], i * 0.04):
            out.append((r, sizes[int(round(r.stamp / 0.04)) % 2]))
    assert rec.counters["resets"] == 0 and rec.counters["size_changes"] == 11
    assert len(out) == 12 - T + 1 + (T - 1)  # first window steps T frames, then 1 per frame
    for r, (h, w) in out:
        assert np.all(r.boxes[:, [0, 2]] >= -0.5) and np.all(r.boxes[:, [0, 2]] <= w - 0.5)
        assert np.all(r.boxes[:, [1, 3]] >= -0.5) and np.all(r.boxes[:, [1, 3]] <= h - 0.5)


def test_50k_resets_keep_the_reset_record_bounded(checkpoint) -> None:
    """Stamps alternating 0 / 100 s reset on every frame (gap, then time jump): 50k resets.

    The per-kind counters keep two keys, the message is the last one only, and memory held by
    Python objects does not grow with the number of resets.
    """
    rec = make(checkpoint, stride=1)
    img = images(1, hw=(8, 8))[0]
    rec.push(img, 0.0)
    for i in range(1, 1000):
        rec.push(img, 100.0 * (i % 2))
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(1000, 50000):
        rec.push(img, 100.0 * (i % 2))
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert rec.counters["resets"] == 49999
    assert rec.reset_reasons == {ResetKind.GAP: 25000, ResetKind.TIME_JUMP: 24999}
    assert rec.last_reset_reason == "gap of 100.000s > max_gap_s"
    assert grown < 64 * 1024, grown
