"""Streaming Recognizer semantics (small random model, torch backend, tiny frames)."""

from __future__ import annotations

import gc
import tracemalloc

import numpy as np
import pytest
import torch

from glimpse_ros.config import ModelConfig, RecognizerConfig
from glimpse_ros.model.checkpoint import save_checkpoint
from glimpse_ros.model.glimpse_clouds import GlimpseClouds
from glimpse_ros.preprocess import preprocess_frame
from glimpse_ros.runtime.frame_buffer import FrameBuffer
from glimpse_ros.runtime.recognizer import Recognizer
from runtime_fixtures import make_recognizer as make, random_frames as frames

T = 4
LABELS = ["a", "b", "c", "d"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """Save a small random model (T=4, 64x64 crops) to a temporary file."""
    torch.manual_seed(0)
    cfg = ModelConfig.small(num_classes=4, frames=T, crop_size=64, resize_size=72)
    model = GlimpseClouds(cfg).eval()
    path = tmp_path_factory.mktemp("ckpt") / "small.safetensors"
    save_checkpoint(path, model, LABELS)
    return path


def run(rec: Recognizer, imgs, stamps):
    """Push frames with their stamps and collect all results."""
    out = []
    for img, s in zip(imgs, stamps):
        out.extend(rec.push(img, s))
    return out


@pytest.mark.parametrize("stride", range(1, T + 1))
def test_every_frame_stepped_once_in_order(checkpoint, stride):
    """Every frame stepped once in order."""
    rec = make(checkpoint, stride=stride)
    n = T + 3 * stride + stride // 2
    stamps = [i * 0.04 for i in range(n)]
    results = run(rec, frames(n), stamps)
    stepped = T + stride * ((n - T) // stride)
    assert [r.stamp for r in results] == stamps[:stepped]
    windows = [r.window_index for r in results]
    assert windows == sorted(windows) and windows[0] == 0
    assert windows.count(0) == T and all(windows.count(w) == stride for w in set(windows) - {0})
    assert rec.counters["stepped_frames"] == stepped


def test_nothing_before_buffer_full(checkpoint):
    """Nothing before buffer full."""
    rec = make(checkpoint, stride=1)
    assert all(rec.push(f, i * 0.04) == [] for i, f in enumerate(frames(T - 1)))


def test_each_frame_preprocessed_once_on_arrival(checkpoint, monkeypatch):
    """Frames are preprocessed once on arrival, not again for every window they are in."""
    import glimpse_ros.runtime.recognizer as recognizer_module

    calls = []

    def counting(frame, *args, **kwargs):
        calls.append(frame)
        return preprocess_frame(frame, *args, **kwargs)

    monkeypatch.setattr(recognizer_module, "preprocess_frame", counting)
    rec = make(checkpoint, stride=1)  # stride 1: every frame is in T windows
    imgs = frames(T + 5)
    for i, img in enumerate(imgs):
        rec.push(img, i * 0.04)
        assert len(calls) == i + 1 and calls[-1] is img
    assert rec.counters["windows"] == 6


def reference_window(rec: Recognizer, imgs) -> tuple[torch.Tensor, torch.Tensor]:
    """Backbone outputs of a window computed directly with torch."""
    cfg = rec.model_config
    x = np.stack([preprocess_frame(f, cfg.resize_size, cfg.crop_size) for f in imgs], axis=1)
    with torch.inference_mode():
        return rec.engine.module(torch.from_numpy(x[None]))  # (1, D, T, h, w), (1, T, Dc)


def test_stream_matches_manual_stepping_and_clip_on_first_window(checkpoint):
    """Stream matches manual stepping and clip on first window."""
    stride = 3
    imgs = frames(T + 2 * stride)
    stamps = [i * 0.04 for i in range(len(imgs))]
    stream = run(make(checkpoint, stride=stride, head_mode="stream"), imgs, stamps)
    clip = run(make(checkpoint, stride=stride, head_mode="clip"), imgs, stamps)
    for a, b in zip(stream[:T], clip[:T]):  # first window: identical
        np.testing.assert_allclose(a.probs, b.probs, rtol=0, atol=1e-6)
        np.testing.assert_allclose(a.glimpses, b.glimpses, rtol=0, atol=1e-6)
    assert clip[0].window_probs is not None and stream[0].window_probs is None

    rec = make(checkpoint, stride=stride)
    head = rec.head
    with torch.inference_mode():
        state = head.initial_state(1)
        expected = []
        for w, last in enumerate(range(T, len(imgs) + 1, stride)):
            z, c = reference_window(rec, imgs[last - T:last])
            for i in range(0 if w == 0 else T - stride, T):  # frame i of the window = Z[:, :, i]
                state, out = head.step(state, z[:, :, i], c[:, i])
                expected.append(torch.softmax(out.logits[0], -1).numpy())
    assert len(expected) == len(stream)
    for exp, got in zip(expected, stream):
        np.testing.assert_allclose(got.probs, exp, rtol=0, atol=1e-5)
    # Later windows differ between the modes (stream carries state, clip restarts).
    assert not np.allclose(stream[-1].probs, clip[-1].probs, atol=1e-7)


def test_backwards_stamp_resets_state(checkpoint):
    """Backwards stamp resets state."""
    imgs = frames(2 * T, seed=1)
    rec = make(checkpoint, stride=T)
    run(rec, imgs[:T], [10 + i * 0.04 for i in range(T)])
    after = run(rec, imgs[T:], [1 + i * 0.04 for i in range(T)])  # time went backwards
    assert rec.counters["resets"] == 1 and "backwards" in rec.last_reset_reason
    fresh = run(make(checkpoint, stride=T), imgs[T:], [1 + i * 0.04 for i in range(T)])
    for a, b in zip(after, fresh):
        np.testing.assert_allclose(a.probs, b.probs, rtol=0, atol=1e-6)


def test_gap_resets_and_size_change_continues(checkpoint):
    """A gap resets; a size change continues the sequence (counted); a manual reset is counted."""
    from glimpse_ros.runtime.stream_policy import ResetKind

    rec = make(checkpoint, stride=1, max_gap_s=0.5)
    run(rec, frames(T), [i * 0.04 for i in range(T)])
    assert rec.push(frames(1)[0], 5.0) == []  # gap: the buffer starts again
    assert "gap" in rec.last_reset_reason and rec.last_reset_kind is ResetKind.GAP
    rec.push(frames(1, hw=(30, 30))[0], 5.04)
    assert rec.counters["resets"] == 1 and rec.counters["size_changes"] == 1
    rec.reset("requested by test")
    assert rec.reset_reasons == {ResetKind.GAP: 1, ResetKind.REQUESTED: 1}
    assert rec.last_reset_reason == "requested by test"


def test_buffer_memory_bounded_over_1000_frames(checkpoint):
    """Buffer memory bounded over 1000 frames."""
    rec = make(checkpoint, stride=T)
    img = np.zeros((8, 8, 3), np.uint8)
    nbytes = rec._buffer.nbytes
    for i in range(200):
        rec.push(img, i * 0.01)
    gc.collect()
    objects = len(gc.get_objects())
    for i in range(200, 1000):
        rec.push(img, i * 0.01)
    gc.collect()
    assert len(gc.get_objects()) - objects < 200, "objects accumulate per frame"
    assert rec._buffer.nbytes == nbytes and rec._buffer.count == T
    assert rec.counters["frames"] == 1000 and rec.counters["stepped_frames"] == 1000


def test_frame_buffer_allocates_nothing_per_frame():
    """Frame buffer allocates nothing per frame."""
    buf = FrameBuffer(8, (3, 16, 16))
    frame = np.ones((3, 16, 16), np.float32)
    tracemalloc.start()
    for i in range(1000):
        buf.push(frame, i * 0.01, (16, 16))
        if buf.full and i % 8 == 0:
            buf.clip()
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert current < 16 * 1024, f"{current} bytes still allocated after 1000 frames"


def test_frame_buffer_order_and_eviction():
    """Frame buffer order and eviction."""
    buf = FrameBuffer(3, (3, 2, 2))
    for i in range(5):
        buf.push(np.full((3, 2, 2), i, np.float32), float(i), (2, 2))
    assert buf.stamps().tolist() == [2.0, 3.0, 4.0]
    assert buf.clip()[0, 0, :, 0, 0].tolist() == [2.0, 3.0, 4.0]  # (1, 3, T, H, W)


@pytest.mark.parametrize("bad, words", [
    (np.zeros((8, 8), np.uint8), "rank"),
    (np.zeros((8, 8, 3), np.float32), "dtype"),
    (np.zeros((8, 8, 4), np.uint8), "channels"),
    (np.zeros((0, 8, 3), np.uint8), "zero size"),
    ([[1, 2, 3]], "numpy"),
])
def test_bad_frames_raise_value_error(checkpoint, bad, words):
    """Bad frames raise value error."""
    rec = make(checkpoint)
    with pytest.raises(ValueError, match=words):
        rec.push(bad, 0.0)
    with pytest.raises(ValueError, match="finite"):
        rec.push(np.zeros((8, 8, 3), np.uint8), float("nan"))


def test_results_fields_and_smoothing(checkpoint):
    """Results fields and smoothing."""
    rec = make(checkpoint, stride=T, smoothing=0.5, top_k=2)
    res = run(rec, frames(T, hw=(40, 60)), [i * 0.04 for i in range(T)])
    r = res[-1]
    assert r.glimpses.shape == (3, 4) and r.boxes.shape == (3, 4) and r.probs.shape == (4,)
    assert len(r.top_k) == 2 and r.label == r.top_k[0][0] and r.label in LABELS
    assert np.all(r.boxes[:, [0, 2]] <= 59) and np.all(r.boxes[:, [1, 3]] <= 39)
    assert abs(float(r.probs.sum()) - 1) < 1e-5
    assert set(rec.timings) >= {"preprocess", "backbone", "head"}


def test_labels_file_override_and_mismatch(checkpoint, tmp_path):
    """Labels file override and mismatch."""
    good = tmp_path / "labels.txt"
    good.write_text("w\nx\ny\nz\n")
    assert make(checkpoint, labels_path=str(good)).labels == ["w", "x", "y", "z"]
    bad = tmp_path / "bad.txt"
    bad.write_text("w\nx\n")
    with pytest.raises(ValueError, match="bad.txt"):
        make(checkpoint, labels_path=str(bad))


def test_stride_larger_than_window_and_missing_model(checkpoint, tmp_path):
    """Stride larger than window and missing model."""
    with pytest.raises(ValueError, match="stride"):
        make(checkpoint, stride=T + 1)
    with pytest.raises(ValueError, match="nope.safetensors"):
        Recognizer(RecognizerConfig(backend="torch"), tmp_path / "nope.safetensors")


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_onnx_backends_match_torch_and_cache_export(checkpoint, tmp_path, backend):
    """An ONNX-engine Recognizer gives torch's results; the export is cached per checkpoint."""
    pytest.importorskip(backend)
    imgs = frames(T + 2)
    stamps = [i * 0.04 for i in range(len(imgs))]
    ref = run(make(checkpoint, stride=2), imgs, stamps)
    rec = make(checkpoint, stride=2, backend=backend, engine_cache_dir=str(tmp_path))
    assert rec.backend_name == backend
    got = run(rec, imgs, stamps)
    assert len(got) == len(ref)
    for a, b in zip(ref, got):
        np.testing.assert_allclose(a.probs, b.probs, rtol=0, atol=1e-4)
        np.testing.assert_allclose(a.glimpses, b.glimpses, rtol=0, atol=1e-4)
    exports = sorted((tmp_path / "onnx").glob("*.onnx"))  # the backbone and the head step
    assert [p.name.split("-")[0] for p in exports] == ["backbone", "head2x2"]
    mtimes = [p.stat().st_mtime_ns for p in exports]
    make(checkpoint, backend=backend, engine_cache_dir=str(tmp_path))
    assert [p.stat().st_mtime_ns for p in exports] == mtimes  # reused, not re-exported
    assert len(list((tmp_path / "onnx").glob("*.onnx"))) == 2


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_corrupt_cached_onnx_is_exported_again(checkpoint, tmp_path, backend, caplog):
    """A damaged cached export is replaced instead of failing the start-up."""
    pytest.importorskip(backend)
    make(checkpoint, backend=backend, engine_cache_dir=str(tmp_path))
    (cached,) = (tmp_path / "onnx").glob("backbone-*.onnx")
    cached.write_bytes(b"not an onnx file")
    rec = make(checkpoint, backend=backend, engine_cache_dir=str(tmp_path), stride=T)
    assert "exporting again" in caplog.text
    assert len(run(rec, frames(T), [i * 0.04 for i in range(T)])) == T


def test_reconfigure_applies_live_fields_from_the_next_frame(checkpoint):
    """stride, smoothing, top_k change on a running recognizer; other fields are refused."""
    rec = make(checkpoint, stride=T, top_k=4)
    imgs = frames(T + 2)
    out = run(rec, imgs[:T], [0.1 * i for i in range(T)])
    assert len(out) == T  # the first window
    rec.reconfigure(RecognizerConfig(backend="torch", num_threads=1, stride=1, smoothing=0.5,
                                     top_k=2))
    first = rec.push(imgs[T], 0.1 * T)  # stride 1: every frame gives a result now
    second = rec.push(imgs[T + 1], 0.1 * (T + 1))
    assert len(first) == len(second) == 1
    # EMA by hand (smoothing was 0, so the state before was the last frame's probabilities)
    s1 = 0.5 * out[-1].probs + 0.5 * first[0].probs
    s2 = 0.5 * s1 + 0.5 * second[0].probs
    order = np.argsort(-s2, kind="stable")[:2]
    assert [name for name, _ in second[0].top_k] == [LABELS[i] for i in order]
    assert [p for _, p in second[0].top_k] == pytest.approx([s2[i] for i in order], abs=1e-6)
    with pytest.raises(ValueError, match="backend"):
        rec.reconfigure(RecognizerConfig(backend="onnxruntime", num_threads=1))
    with pytest.raises(ValueError, match="stride"):
        rec.reconfigure(RecognizerConfig(backend="torch", num_threads=1, stride=T + 1))
