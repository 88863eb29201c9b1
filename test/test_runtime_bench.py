"""Bench bookkeeping: latency model, ratios, load accounting, the bench-node streaming model.

No timing here (speed is measured by ``make bench``): the arithmetic is checked on hand-made
measurements against closed forms.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from glimpse_ros.bench import common as bench_common
from glimpse_ros.bench.common import CpuMeter, CpuSample
from glimpse_ros.bench.stream import Variant, _summary, ratios


def rounds(ms: float, backbone: float, cpu: float | None = None) -> list[dict]:
    """Three identical rounds of per-frame figures."""
    return [{"ms_per_frame": ms, "cpu_ms_per_frame": cpu or ms, "backbone_ms_per_frame": backbone,
             "head_ms_per_frame": 1.0, "preprocess_ms_per_frame": 0.5}] * 3


def test_window_latency_waits_for_the_rest_of_the_stride():
    """Stride 4 at 30 fps: frames wait 3, 2, 1, 0 frame periods, then the window's push."""
    v = Variant("window_stride4", "window", 4, "fp32", "fp32", rec=None,
                rounds=rounds(40.0, 30.0), window_push_ms=[150.0, 160.0, 170.0])
    s = _summary(v, camera_fps=30.0)
    assert s["stride"] == 4 and s["ms_per_frame"] == 40.0 and s["fps"] == pytest.approx(25.0)
    assert s["latency_ms"] == pytest.approx(160.0 + 1000.0 * 1.5 / 30.0)
    assert s["latency_max_ms"] == pytest.approx(160.0 + 100.0)
    assert s["overhead"] == pytest.approx(10.0 / 30.0)
    stream = _summary(Variant("fp32", "stream", 1, "fp32", "fp32", rec=None,
                              rounds=rounds(20.0, 15.0)), 30.0)
    assert stream["latency_ms"] == stream["latency_max_ms"] == 20.0 and "stride" not in stream


def test_ratios_against_hand_computed_values():
    """Stride/stream ratios, stream backbone vs clip/T, best streamed variant and speed-ups."""
    report = {"variants": [
        {"name": "window_stride1", "path": "window", "ms_per_frame": 600.0,
         "cpu_ms_per_frame": 1200.0},
        {"name": "window_stride4", "path": "window", "ms_per_frame": 160.0,
         "cpu_ms_per_frame": 320.0},
        {"name": "fp32", "path": "stream", "ms_per_frame": 80.0, "cpu_ms_per_frame": 150.0,
         "backbone_ms_per_frame": 70.0, "fps": 12.5},
        {"name": "int8+head_int8", "path": "stream", "ms_per_frame": 25.0,
         "cpu_ms_per_frame": 45.0, "backbone_ms_per_frame": 20.0, "fps": 40.0}],
        "clip_engine": {"per_frame_ms": 560.0 / 8}}
    r = ratios(report)
    assert r["stride1_over_stream"] == pytest.approx(7.5)
    assert r["stride1_over_stream_cpu"] == pytest.approx(8.0)
    assert r["stride4_over_stream"] == pytest.approx(2.0)
    assert "stride8_over_stream" not in r
    assert r["stream_backbone_over_clip_per_frame"] == pytest.approx(1.0)
    assert r["fastest_stream"] == "int8+head_int8" and r["fastest_stream_fps"] == 40.0
    assert "best_stream" not in r  # the targets' variant needs the agreement: qualified_best
    assert report["variants"][3]["speedup_vs_fp32"] == pytest.approx(3.2)
    assert report["variants"][3]["backbone_speedup_vs_fp32"] == pytest.approx(3.5)


def test_cpu_meter_separates_own_and_external_cpu(monkeypatch):
    """External load = (machine busy - own CPU) / wall, summed over intervals, never < 0."""
    samples = iter([CpuSample(0.0, 0.0, 100.0), CpuSample(2.0, 3.0, 106.0),  # 3 s of others
                    CpuSample(5.0, 3.0, 106.0), CpuSample(7.0, 3.5, 107.0)])  # 0.5 s
    monkeypatch.setattr(CpuSample, "now", classmethod(lambda cls: next(samples)))
    meter = CpuMeter()
    for _ in range(2):
        with meter:
            pass
    assert meter.wall_s == 4.0 and meter.own_s == 3.5 and meter.machine_s == 7.0
    assert meter.external_load == pytest.approx(3.5 / 4.0)
    assert CpuMeter().external_load == 0.0


def test_cpu_description_names_family_model_and_flags(monkeypatch, tmp_path):
    """Family/model numbers and the notable flags come from /proc/cpuinfo."""
    text = ("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\n"
            "model name\t: AMD EPYC 9R14\nflags\t\t: fpu avx2 avx512f avx512_bf16 sse\n")
    monkeypatch.setattr(bench_common, "Path", lambda _p: _FakePath(text))
    monkeypatch.setattr(bench_common, "cpu_flags",
                        lambda: {"fpu", "avx2", "avx512f", "avx512_bf16", "sse"})
    info = bench_common.cpu_description()
    assert info == {"name": "AMD EPYC 9R14", "flags": ["avx2", "avx512_bf16", "avx512f"],
                    "cpu_family": 25, "model": 17}


@dataclasses.dataclass
class _FakePath:
    text: str

    def read_text(self) -> str:
        return self.text


def test_bench_node_stream_model_is_a_causal_copy(tmp_path):
    """A symmetric model gives a causal copy with the same configuration otherwise."""
    pytest.importorskip("rclpy")
    from glimpse_ros.config import ModelConfig
    from glimpse_ros.model.checkpoint import load_checkpoint, save_checkpoint
    from glimpse_ros.model.glimpse_clouds import GlimpseClouds
    from glimpse_ros.bench.node import stream_model

    cfg = ModelConfig.small(num_classes=3)
    sym = save_checkpoint(tmp_path / "sym.safetensors", GlimpseClouds(cfg), ["a", "b", "c"])
    path, how = stream_model(str(sym), tmp_path)
    copy = load_checkpoint(path)
    assert "random weights" in how and copy.config.causal
    assert copy.config == dataclasses.replace(cfg, temporal_padding="causal")
    assert list(copy.labels) == ["a", "b", "c"]
    again, how = stream_model(path, tmp_path)  # a causal model is used as it is
    assert again == path and how == "causal_sym.safetensors (causal)"


def test_step_over_clip_per_precision_by_hand():
    """bf16 / int8 streamed backbone per frame over that precision's clip engine / T."""
    from glimpse_ros.bench.__main__ import step_over_clip

    report = {"recognizer_stream": {"bf16": {"backbone_ms_per_frame": 30.0},
                                    "int8": {"backbone_ms_per_frame": 24.0},
                                    "int8_mixed+head_int8": {"backbone_ms_per_frame": 27.0}},
              "engines": {"openvino:bf16": {"median_ms": 200.0},
                          "openvino:int8": {"error": "no nncf"},
                          "openvino:int8_mixed": {"median_ms": 180.0}}}
    out = step_over_clip(report, frames=8)
    assert out["stream_backbone_over_clip_per_frame_bf16"] == pytest.approx(30.0 / 25.0)
    # int8_mixed streams with the int8 head only: its backbone part is the ratio's numerator.
    assert out["stream_backbone_over_clip_per_frame_int8_mixed"] == pytest.approx(27.0 / 22.5)
    assert "stream_backbone_over_clip_per_frame_int8" not in out   # no timed int8 clip


def test_fps_targets_count_only_variants_that_agree_with_fp32():
    """The fastest variant below the agreement line is reported, not counted (issue 18)."""
    from glimpse_ros.bench.__main__ import qualified_best

    stream = {n: {"name": n, "ms_per_frame": 1000.0 / fps, "fps": fps} for n, fps in
              (("fp32", 12.0), ("fp32+head_torch", 11.0), ("bf16+head_int8", 22.0),
               ("int8+head_int8", 36.0), ("int8", 31.0))}
    configs = {"bf16+head_int8": {"top1_agreement": 0.996},
               "int8+head_int8": {"top1_agreement": 0.979}, "int8": {"top1_agreement": 0.9799}}
    report = {"recognizer_stream": stream, "precision_deviation": {"configs": configs},
              "ratios": {"fastest_stream": "int8+head_int8", "fastest_stream_fps": 36.0}}
    out = qualified_best(report)
    assert out["best_stream"] == "bf16+head_int8" and out["best_stream_fps"] == 22.0
    assert out["best_stream_agreement"] == 0.996 and out["best_stream_fps_stretch"] == 22.0
    assert stream["fp32+head_torch"]["top1_agreement"] == 1.0
    # At a lower line int8 + int8 head counts.
    assert qualified_best(report, 0.975)["best_stream"] == "int8+head_int8"
    # Without the deviation (--no-deviation) only fp32 counts.
    del report["precision_deviation"]
    assert qualified_best(report)["best_stream"] == "fp32"


def test_agreement_interval_resamples_videos():
    """Whole videos are resampled: one bad video widens the interval far more than frames would.

    Closed forms: every video agreeing gives [1, 1]; 10 videos of which one disagrees on every
    frame has mean 0.9 and a bootstrap interval close to the binomial one over 10 videos
    (0.7 .. 1.0), not the one over 240 frames (about 0.86 .. 0.94).
    """
    from glimpse_ros.bench.precision import agreement_interval

    assert agreement_interval(np.ones((10, 24), bool)) == (1.0, 1.0)
    match = np.ones((10, 24), bool)
    match[3] = False
    lo, hi = agreement_interval(match)
    assert 0.65 <= lo <= 0.75 and hi == 1.0


def test_bench_node_passes_extra_parameters_to_the_node():
    """--node-param values reach the node's command line as ROS parameters, after the defaults."""
    import argparse

    from glimpse_ros.bench.node_run import node_command

    args = argparse.Namespace(backend="openvino", stride=4, input_reliability="reliable",
                              node_param=["precision:=int8_mixed", "num_threads:=2"])
    cmd = node_command(args, "m.safetensors", compressed=False)
    assert cmd[-4:] == ["-p", "precision:=int8_mixed", "-p", "num_threads:=2"]
    assert "model_path:=m.safetensors" in cmd and "backend:=openvino" in cmd
    plain = node_command(argparse.Namespace(**{**vars(args), "node_param": []}), "", True)
    assert plain[-1] == "compressed:=true" and not any("model_path" in a for a in plain)


def test_streamed_variants_follow_the_native_precisions(monkeypatch):
    """int8_mixed streams only where both int8 and bf16 are native; other engines fp32 only."""
    from glimpse_ros.bench.stream import stream_precisions
    from glimpse_ros.runtime import precision as precision_mod

    monkeypatch.setattr(precision_mod, "native_int8", lambda: (True, "int8 (test)"))
    monkeypatch.setattr(precision_mod, "native_bf16", lambda: (True, "bf16 (test)"))
    assert stream_precisions("openvino") == [
        ("fp32", "fp32"), ("bf16", "fp32"), ("bf16", "int8"), ("int8", "fp32"),
        ("int8", "int8"), ("int8_mixed", "int8")]
    assert stream_precisions("onnxruntime") == [("fp32", "fp32")]
    monkeypatch.setattr(precision_mod, "native_bf16", lambda: (False, "no bf16 (test)"))
    assert stream_precisions("openvino") == [("fp32", "fp32"), ("int8", "fp32"),
                                             ("int8", "int8")]
