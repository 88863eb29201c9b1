"""Streaming vs windowed Recognizer, end to end, in one run on one engine (``make bench``).

Variants (ResNet-50 at 224^2 unless ``--small``, random weights: speed does not depend on them):

- ``window`` at each stride (1, 4, 8): a symmetric model, the backbone re-run on the 8-frame
  window every ``stride`` frames;
- ``stream``: a causal model, one backbone step and one head step per frame, in fp32 and in every
  other backbone precision this CPU runs natively (bf16, int8), with the fp32 and, for the
  reduced precisions, the int8 head (the two are independent); the fp32 head runs as the
  exported head step on the backbone's engine (``head_engine: auto``), and ``+head_torch``
  variants run it eagerly instead (``head_engine: torch``) for comparison;
- the clip engine alone on the same clip (the compute floor of a window is one clip; of a
  streamed frame one clip / T).

All variants run round robin: in every round each pushes ``T`` frames (camera-sized images), so
load from other processes falls on all of them alike and their ratios hold on a shared machine.
Per frame we record wall and own-CPU time (see :mod:`glimpse_ros.bench.common`) and the
backbone, head and preprocessing parts; per variant the median over rounds. OpenVINO variants
also list the kernels the plugin compiled (:mod:`glimpse_ros.runtime.openvino_kernels`), so a
silent fallback to another precision or to a reference kernel shows next to the timings.

Frame-to-label latency assumes frames arrive at ``camera_fps`` and the recognizer keeps up: a
windowed frame at position ``j`` of its stride group waits for the ``stride - 1 - j`` frames after
it, then for the window's push; a streamed frame only for its own push.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from glimpse_ros.config import RecognizerConfig
from glimpse_ros.bench.common import CpuMeter
from glimpse_ros.runtime.precision import native_support
from glimpse_ros.runtime.recognizer import Recognizer

LOG = logging.getLogger("glimpse_ros.bench")
CAMERA_FPS = 30.0


@dataclass
class Variant:
    """One Recognizer configuration and its per-round measurements."""

    name: str
    path: str  # "window" or "stream"
    stride: int
    precision: str
    head_precision: str
    rec: Recognizer
    rounds: list[dict] = field(default_factory=list)
    window_push_ms: list[float] = field(default_factory=list)
    meter: CpuMeter = field(default_factory=CpuMeter)
    head_engine: str = ""  # what runs the head: "torch" or the engine of the exported step

    def __post_init__(self) -> None:
        """Record the head engine of the recognizer."""
        runner = getattr(self.rec, "head_runner", None)
        self.head_engine = self.head_engine or getattr(runner, "name", "")


def stream_precisions(backend: str) -> list[tuple[str, str]]:
    """``(backbone, head)`` precisions of the streamed variants ``backend`` runs natively here."""
    combos = [("fp32", "fp32")]
    if backend != "openvino":  # bf16 and int8 are OpenVINO precisions
        return combos
    for name, heads in (("bf16", ("fp32", "int8")), ("int8", ("fp32", "int8")),
                        ("int8_mixed", ("int8",))):
        ok, why = native_support(name)
        if ok:
            combos += [(name, head) for head in heads]
        else:
            LOG.info("streaming %s skipped: %s", name, why)
    return combos


def build_variants(symmetric: Path, causal: Path, strides: list[int], backend: str,
                   threads: int, cache_dir: str) -> list[Variant]:
    """Recognizers for every windowed stride and every streamed precision combination."""
    variants = []
    for s in strides:
        cfg = RecognizerConfig(backend=backend, stride=s, num_threads=threads,
                               engine_cache_dir=cache_dir)
        variants.append(Variant(f"window_stride{s}", "window", s, "fp32", "fp32",
                                Recognizer(cfg, symmetric)))
        if s == 4 and backend in ("onnxruntime", "openvino"):  # the default stride, eager head
            cfg = dataclasses.replace(cfg, head_engine="torch")
            variants.append(Variant("window_stride4+head_torch", "window", s, "fp32", "fp32",
                                    Recognizer(cfg, symmetric)))
    combos = [(p, h, "auto") for p, h in stream_precisions(backend)]
    if backend in ("onnxruntime", "openvino"):
        combos.insert(1, ("fp32", "fp32", "torch"))
    for prec, head, head_engine in combos:
        cfg = RecognizerConfig(backend=backend, precision=prec, head_precision=head,
                               head_engine=head_engine, num_threads=threads,
                               engine_cache_dir=cache_dir)
        name = prec if head == "fp32" else f"{prec}+head_{head}"
        name += "+head_torch" if head_engine == "torch" else ""
        variants.append(Variant(name, "stream", 1, prec, head, Recognizer(cfg, causal)))
    return variants


def _push_round(v: Variant, images: list[np.ndarray], start: int, frames: int) -> dict:
    """Push ``frames`` images into ``v``; per-frame wall/CPU time and its parts."""
    wall = cpu = backbone = head = preprocess = 0.0
    for k in range(start, start + frames):
        c0, t0 = time.process_time(), time.perf_counter()
        with v.meter:
            out = v.rec.push(images[k % len(images)], k / CAMERA_FPS)
        dt = (time.perf_counter() - t0) * 1e3
        wall, cpu = wall + dt, cpu + (time.process_time() - c0) * 1e3
        if out:
            timings = v.rec.timings
            backbone, head = backbone + timings["backbone"], head + timings["head"]
            preprocess += timings["preprocess"]
            if v.path == "window":
                v.window_push_ms.append(dt)
    return {"ms_per_frame": wall / frames, "cpu_ms_per_frame": cpu / frames,
            "backbone_ms_per_frame": backbone / frames, "head_ms_per_frame": head / frames,
            "preprocess_ms_per_frame": preprocess / frames}


def _summary(v: Variant, camera_fps: float) -> dict:
    """Medians over rounds, latency and load of one variant."""
    keys = v.rounds[0].keys()
    out: dict = {"name": v.name, "path": v.path, "precision": v.precision,
                 "head_precision": v.head_precision, "head_engine": v.head_engine}
    out.update({k: statistics.median(r[k] for r in v.rounds) for k in keys})
    out["ms_per_frame_min"] = min(r["ms_per_frame"] for r in v.rounds)
    out["fps"] = 1e3 / out["ms_per_frame"]
    if v.path == "window":
        out["stride"] = v.stride
        push = statistics.median(v.window_push_ms)
        waits = [(v.stride - 1 - j) * 1e3 / camera_fps for j in range(v.stride)]
        out["latency_ms"] = push + statistics.mean(waits)
        out["latency_max_ms"] = push + max(waits)
        out["overhead"] = ((out["ms_per_frame"] - out["backbone_ms_per_frame"])
                           / out["backbone_ms_per_frame"])
    else:
        out["latency_ms"] = out["latency_max_ms"] = out["ms_per_frame"]
    out["external_load_cores"] = v.meter.external_load
    kernels = getattr(getattr(v.rec, "engine", None), "kernels", None)  # OpenVINO's kernels
    if kernels is not None:
        out["kernels"] = kernels()
    return out


def measure(variants: list[Variant], frames_per_round: int, rounds: int,
            camera_fps: float = CAMERA_FPS, seed: int = 0) -> dict:
    """Round-robin measurement of ``variants`` plus the clip engine alone; the report part."""
    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(4)]
    ref = next((v for v in variants if v.path == "window"), None)
    clip = None
    if ref is not None:
        cfg = ref.rec.model_config
        clip = rng.standard_normal((1, 3, cfg.frames, cfg.crop_size, cfg.crop_size)
                                   ).astype(np.float32)
    pos = {v.name: 0 for v in variants}
    for v in variants:  # warm-up: first output, then one more round (caches, lazy kernels)
        while not v.rec.counters["stepped_frames"]:
            v.rec.push(images[pos[v.name] % 4], pos[v.name] / camera_fps)
            pos[v.name] += 1
        _push_round(v, images, pos[v.name], frames_per_round)
        pos[v.name] += frames_per_round
        v.rounds.clear()
        v.window_push_ms.clear()
        v.meter = CpuMeter()
    clip_ms, clip_cpu, clip_meter = [], [], CpuMeter()
    for r in range(rounds):
        for v in variants:
            v.rounds.append(_push_round(v, images, pos[v.name], frames_per_round))
            pos[v.name] += frames_per_round
        if ref is not None:
            c0, t0 = time.process_time(), time.perf_counter()
            with clip_meter:
                ref.rec.engine.run(clip)
            clip_ms.append((time.perf_counter() - t0) * 1e3)
            clip_cpu.append((time.process_time() - c0) * 1e3)
        LOG.info("round %d/%d: %s", r + 1, rounds,
                 ", ".join(f"{v.name} {v.rounds[-1]['ms_per_frame']:.0f}" for v in variants))
    report: dict = {"camera_fps": camera_fps, "rounds": rounds,
                    "frames_per_round": frames_per_round,
                    "variants": [_summary(v, camera_fps) for v in variants]}
    if ref is not None:
        t = ref.rec.model_config.frames
        report["clip_engine"] = {"median_ms": statistics.median(clip_ms), "min_ms": min(clip_ms),
                                 "cpu_ms": statistics.median(clip_cpu),
                                 "per_frame_ms": statistics.median(clip_ms) / t,
                                 "cpu_per_frame_ms": statistics.median(clip_cpu) / t,
                                 "external_load_cores": clip_meter.external_load}
    return report


def ratios(report: dict) -> dict:
    """The issue's ratios from :func:`measure`'s report (wall and own-CPU time)."""
    by = {v["name"]: v for v in report["variants"]}
    stream = by.get("fp32")
    out: dict = {}
    if stream is None:
        return out
    for s in (1, 4, 8):
        w = by.get(f"window_stride{s}")
        if w:
            out[f"stride{s}_over_stream"] = w["ms_per_frame"] / stream["ms_per_frame"]
            out[f"stride{s}_over_stream_cpu"] = w["cpu_ms_per_frame"] / stream["cpu_ms_per_frame"]
    clip = report.get("clip_engine")
    if clip:
        out["stream_backbone_over_clip_per_frame"] = (stream["backbone_ms_per_frame"]
                                                      / clip["per_frame_ms"])
    streams = [v for v in report["variants"] if v["path"] == "stream"]
    best = min(streams, key=lambda v: v["ms_per_frame"])
    out["fastest_stream"] = best["name"]  # by speed alone; the targets: qualified_best
    out["fastest_stream_fps"] = best["fps"]
    for v in streams:
        v["speedup_vs_fp32"] = stream["ms_per_frame"] / v["ms_per_frame"]
        v["backbone_speedup_vs_fp32"] = (stream["backbone_ms_per_frame"]
                                         / v["backbone_ms_per_frame"])
    return out


__all__ = ["CAMERA_FPS", "Variant", "build_variants", "measure", "ratios", "stream_precisions"]
