"""Recognizer with a causal model: one result per pushed frame, equal to the clip forward."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glimpse_ros.config import ModelConfig
from glimpse_ros.model.checkpoint import load_checkpoint, save_checkpoint
from glimpse_ros.model.glimpse_clouds import GlimpseClouds
from glimpse_ros.preprocess import preprocess_frame
from glimpse_ros.runtime.recognizer import Recognizer
from glimpse_ros.runtime.stream_policy import ResetKind
from runtime_fixtures import make_recognizer as make, random_frames as frames, randomise_batchnorm

T = 4
LABELS = ["a", "b", "c", "d"]
TOL = {"torch": 1e-5, "onnxruntime": 1e-4, "openvino": 1e-4}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A small random causal model (T=4, 64x64 crops) with non-trivial BN statistics."""
    torch.manual_seed(0)
    cfg = ModelConfig.small(num_classes=4, frames=T, crop_size=64, resize_size=72,
                            temporal_padding="causal")
    model = randomise_batchnorm(GlimpseClouds(cfg).eval(), affine=False)
    path = tmp_path_factory.mktemp("ckpt") / "causal.safetensors"
    save_checkpoint(path, model, LABELS)
    return path


def clip_forward(checkpoint, imgs) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame probabilities (n, N) and glimpses (n, G, 4) of the model's clip forward."""
    loaded = load_checkpoint(checkpoint)
    cfg = loaded.config
    x = np.stack([preprocess_frame(f, cfg.resize_size, cfg.crop_size) for f in imgs],
                 axis=1)[None]  # (1, 3, n, crop, crop)
    with torch.inference_mode():
        out = loaded.model(torch.from_numpy(x))
    return (torch.softmax(out.step_logits[0], dim=-1).numpy(),  # (n, N)
            out.glimpses[0].numpy())  # (n, G, 4)


def push_all(rec: Recognizer, imgs, stamps) -> list:
    """Push frames one by one; every push must return exactly one result (that frame's)."""
    results = []
    for img, stamp in zip(imgs, stamps):
        out = rec.push(img, stamp)
        assert len(out) == 1 and out[0].stamp == stamp
        results.extend(out)
    return results


def assert_matches(results, probs, glimpses, tol):
    """Results equal the clip forward's per-frame outputs."""
    assert len(results) == len(probs)
    for r, p, g in zip(results, probs, glimpses):
        np.testing.assert_allclose(r.probs, p, rtol=0, atol=tol)
        np.testing.assert_allclose(r.glimpses, g, rtol=0, atol=tol)


@pytest.mark.parametrize("backend", ["torch", "onnxruntime", "openvino"])
def test_one_result_per_frame_equal_to_the_clip_forward(checkpoint, backend, tmp_path):
    """Every pushed frame yields its result at once; 11 frames (> T) == the clip forward."""
    pytest.importorskip(backend)
    rec = make(checkpoint, backend=backend, engine_cache_dir=str(tmp_path))
    assert rec.streaming and rec.backend_name == backend
    imgs = frames(11)
    results = push_all(rec, imgs, [i * 0.04 for i in range(11)])
    assert_matches(results, *clip_forward(checkpoint, imgs), TOL[backend])
    assert [r.window_index for r in results] == list(range(11))
    assert rec.counters["stepped_frames"] == 11 and rec.timings["frames"] == 1.0


def test_stride_and_head_mode_do_not_apply(checkpoint):
    """A causal model streams whatever the windowing settings say."""
    imgs = frames(6, seed=2)
    stamps = [i * 0.04 for i in range(6)]
    a = push_all(make(checkpoint, stride=T, head_mode="clip"), imgs, stamps)
    b = push_all(make(checkpoint, stride=1), imgs, stamps)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.probs, y.probs)


@pytest.mark.parametrize("cause", ["request", "time_jump", "gap"])
def test_reset_restarts_from_a_fresh_backbone_state(checkpoint, cause):
    """After a reset the results equal the clip forward of the frames since the reset."""
    rec = make(checkpoint)
    before = frames(6, seed=3)
    push_all(rec, before, [10 + i * 0.04 for i in range(6)])
    after = frames(5, seed=4)
    # time jump: 9 s backwards (beyond stamp_jitter_s); gap: 5 s forward (beyond max_gap_s)
    start = {"request": 10.24, "time_jump": 1.0, "gap": 15.2}[cause]
    if cause == "request":
        rec.reset("requested by test")
    results = push_all(rec, after, [start + i * 0.04 for i in range(5)])
    assert rec.counters["resets"] == 1
    kinds = {"request": ResetKind.REQUESTED, "time_jump": ResetKind.TIME_JUMP,
             "gap": ResetKind.GAP}
    assert rec.last_reset_kind is kinds[cause]
    probs, glimpses = clip_forward(checkpoint, after)
    assert_matches(results, probs, glimpses, TOL["torch"])
    # Continuing without the reset would have given other outputs (the test can fail).
    cont, _ = clip_forward(checkpoint, before + after)
    assert not np.allclose(cont[6:], probs, atol=1e-4)


def test_size_change_continues_the_stream(checkpoint):
    """A new source frame size is counted, not a reset: results == the clip forward of all."""
    rec = make(checkpoint)
    before, after = frames(6, seed=3), frames(5, seed=4, hw=(30, 30))
    results = push_all(rec, before + after, [10 + i * 0.04 for i in range(11)])
    assert rec.counters["resets"] == 0 and rec.counters["size_changes"] == 1
    assert_matches(results, *clip_forward(checkpoint, before + after), TOL["torch"])
    # A fresh state at the size change would have given other outputs (the test can fail).
    fresh, _ = clip_forward(checkpoint, after)
    assert not np.allclose(np.stack([r.probs for r in results[6:]]), fresh, atol=1e-4)


def test_backwards_jitter_drops_the_frame_and_keeps_the_state(checkpoint):
    """A frame stamped within stamp_jitter_s before the last is dropped, not stepped."""
    rec = make(checkpoint, stamp_jitter_s=0.005)
    imgs, extra = frames(8, seed=5), frames(1, seed=6)[0]
    stamps = [10 + i * 0.04 for i in range(8)]
    results = push_all(rec, imgs[:4], stamps[:4])
    assert rec.push(extra, stamps[3] - 0.002) == []  # 2 ms backwards: dropped
    results += push_all(rec, imgs[4:], stamps[4:])
    assert rec.counters["jitter_dropped"] == 1 and rec.counters["resets"] == 0
    assert_matches(results, *clip_forward(checkpoint, imgs), TOL["torch"])
