"""Head step measurements of ``make bench``: fp32 vs ``head_precision: int8`` (DESIGN §6).

The Recognizer steps the head with one torch thread (:data:`HEAD_THREADS`); these functions time
it that way, fp32 and int8 round robin, and measure the int8 head's deviation from fp32. The
exported head step (``export_head``) on ONNX Runtime and OpenVINO (fp32, and on OpenVINO with
int8 weights) is timed with the same thread count, round robin with the eager fp32 head, and
compared with it frame by frame.
"""

from __future__ import annotations

import argparse
import copy
import logging
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

from glimpse_ros.config import ModelConfig
from glimpse_ros.bench.common import cpu_name
from glimpse_ros.runtime.threads import HEAD_THREADS, exported_head_threads

LOG = logging.getLogger("glimpse_ros.bench")


def _random_window(cfg: ModelConfig, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random non-negative backbone outputs ``Z (1, D, T, h, w)``, ``c (1, T, Dc)`` (post-ReLU)."""
    gen = torch.Generator().manual_seed(seed)
    h = w = cfg.crop_size // 32
    z = torch.randn(1, cfg.feature_dim, cfg.frames, h, w, generator=gen).relu()
    c = torch.randn(1, cfg.frames, cfg.context_dim, generator=gen).relu()
    return z, c


def _round_robin(windows: dict[str, Callable[[], None]], frames: int, runs: int) -> dict:
    """Median and min ms per frame of each window function (``frames`` steps each).

    Timed round robin (window of A, window of B, A, B, ...) so that load from other processes
    affects them alike and their ratio holds on a shared machine; one warm-up window each.
    """
    times: dict[str, list[float]] = {name: [] for name in windows}
    with torch.inference_mode():
        for window in windows.values():
            window()  # warm-up
        for _ in range(runs):
            for name, window in windows.items():
                start = time.perf_counter()
                window()
                times[name].append((time.perf_counter() - start) * 1e3 / frames)
    return {name: {"median_ms": statistics.median(t), "min_ms": min(t), "times_ms": t}
            for name, t in times.items()}


def _eager_window(head: torch.nn.Module, z: torch.Tensor, c: torch.Tensor
                  ) -> Callable[[], None]:
    """A window function stepping ``head`` over ``z (1, D, T, h, w)``, ``c (1, T, Dc)``."""
    def window() -> None:
        state = head.initial_state(1)
        for t in range(z.shape[2]):
            state, _ = head.step(state, z[:, :, t], c[:, t])
    return window


def bench_heads(heads: dict[str, torch.nn.Module], cfg: ModelConfig, runs: int) -> dict:
    """Median and min step latency per frame of each head (state carried across frames)."""
    z, c = _random_window(cfg, 0)
    return _round_robin({name: _eager_window(head, z, c) for name, head in heads.items()},
                        cfg.frames, runs)


def bench_exported_head(head: torch.nn.Module, cfg: ModelConfig, runs: int,
                        engine_threads: int = HEAD_THREADS) -> dict:
    """The exported head step on each installed engine vs the eager fp32 head.

    Returns per engine (``torch_eager``, ``onnxruntime``, ``openvino`` in fp32, and
    ``openvino_int8``: the export with int8 weights, :mod:`glimpse_ros.runtime.head_int8`) the
    latency per frame (round robin, each with the threads the Recognizer gives it when its
    backbone engine has ``engine_threads``: :func:`exported_head_threads`; eager
    :data:`HEAD_THREADS`), its speed-up over eager, and the largest deviation from eager over
    one window (logits, glimpses, assignment).
    """
    from glimpse_ros.model.quantize import prepare_head
    from glimpse_ros.runtime.engine import EngineUnavailable
    from glimpse_ros.runtime.export.head import export_head
    from glimpse_ros.runtime.head_engine import BACKENDS, HeadStepEngine

    eager = prepare_head(head, "fp32")
    z, c = _random_window(cfg, 0)
    zs = [z[:, :, t].numpy() for t in range(cfg.frames)]
    cs = [c[:, t].numpy() for t in range(cfg.frames)]
    windows = {"torch_eager": _eager_window(eager, z, c)}
    deviation, engines = {}, {}
    with tempfile.TemporaryDirectory(prefix="glimpse_head_") as work:
        path = export_head(head, Path(work) / "head.onnx")
        for backend in BACKENDS:
            try:
                engines[backend] = HeadStepEngine(
                    path, backend, threads=exported_head_threads(backend, engine_threads))
            except EngineUnavailable:
                continue
        if "openvino" in engines:
            try:
                from glimpse_ros.runtime.head_int8 import head_int8_model

                engines["openvino_int8"] = HeadStepEngine(
                    head_int8_model(path, work), "openvino", precision="int8",
                    threads=exported_head_threads("openvino", engine_threads))
            except ValueError as err:  # nncf missing
                LOG.info("exported int8 head skipped: %s", err)
        with torch.inference_mode():
            ref = head(z, c)  # (1, T, ...) per-frame outputs from a fresh state
        for backend, engine in engines.items():
            engine.reset()
            outs = [engine.step(zt, ct) for zt, ct in zip(zs, cs)]
            deviation[backend] = {
                k: float(max(abs(getattr(o, k)[0] - getattr(ref, r)[0, t].numpy()).max()
                             for t, o in enumerate(outs)))
                for k, r in (("logits", "step_logits"), ("glimpses", "glimpses"),
                             ("assignment", "assignment"))}

            def window(engine: HeadStepEngine = engine) -> None:
                engine.reset()
                for zt, ct in zip(zs, cs):
                    engine.step(zt, ct)
            windows[backend] = window
        timed = _round_robin(windows, cfg.frames, runs)
    base = timed["torch_eager"]["median_ms"]
    for backend in engines:
        timed[backend]["speedup_vs_eager"] = base / timed[backend]["median_ms"]
        timed[backend]["max_abs_diff_vs_eager"] = deviation[backend]
    timed["threads"] = {backend: engines[backend].threads for backend in engines}
    timed["threads"]["torch_eager"] = HEAD_THREADS
    return timed


def int8_accuracy(head: torch.nn.Module, cfg: ModelConfig, windows: int = 3) -> dict:
    """Deviation of the int8 head from the fp32 head over ``windows`` random windows.

    Random weights give near-uniform probabilities, which would hide any error. The comparison
    therefore runs on a copy whose memory metric is initialised from random features (as
    training does; identity would be exact in float16) and whose classifiers are scaled so that
    the fp32 step logits have a standard deviation of 3 (probabilities spread over [0, 1]).
    """
    from glimpse_ros.model.quantize import quantize_head

    ref = copy.deepcopy(head).eval()
    gen = torch.Generator().manual_seed(2)
    with torch.inference_mode():
        ref.memory.init_metric(torch.randn(4 * cfg.frames * cfg.num_glimpses, cfg.feature_dim,
                                           generator=gen).abs())
        clips = [_random_window(cfg, 10 + i) for i in range(windows)]
        scale = 3.0 / torch.cat([ref(z, c).step_logits.flatten() for z, c in clips]).std()
        for fc in ref.workers.classifiers:
            fc.weight.mul_(scale)
            fc.bias.mul_(scale)
        int8 = quantize_head(ref)
        a = torch.cat([ref(z, c).step_logits[0] for z, c in clips])  # (windows * T, N)
        b = torch.cat([int8(z, c).step_logits[0] for z, c in clips])  # (windows * T, N)
    prob_a, prob_b = a.softmax(dim=-1), b.softmax(dim=-1)
    return {"frames": int(a.shape[0]),
            "max_abs_prob_diff": float((prob_a - prob_b).abs().max()),
            "max_abs_logit_diff": float((a - b).abs().max()),
            "logit_std": float(a.std()), "max_prob": float(prob_a.max()),
            "top1_agreement": float((a.argmax(-1) == b.argmax(-1)).float().mean())}


def head_report(model: torch.nn.Module, cfg: ModelConfig, runs: int,
                engine_threads: int = HEAD_THREADS) -> dict:
    """fp32 and int8 step latency (round robin) and the int8 deviation for one model size."""
    from glimpse_ros.model.quantize import prepare_head

    head = model.head.eval()
    # The inference copies the Recognizer steps (fp32 is exact, see glimpse_ros.model.quantize).
    timed = bench_heads({"fp32": prepare_head(head, "fp32"), "int8": prepare_head(head, "int8")},
                        cfg, runs)
    timed["int8_speedup"] = timed["fp32"]["median_ms"] / timed["int8"]["median_ms"]
    timed["int8_accuracy"] = int8_accuracy(head, cfg)
    timed["exported"] = bench_exported_head(head, cfg, runs, engine_threads)
    return timed


def head_part(report: dict, model: torch.nn.Module, cfg: ModelConfig,
              args: argparse.Namespace) -> None:
    """Head step latency with the Recognizer's thread count, fp32 and int8 (both model sizes)."""
    from glimpse_ros.model.glimpse_clouds import GlimpseClouds

    from glimpse_ros.runtime.engine import resolve_threads

    engine_threads = resolve_threads(args.threads)  # the Recognizer's engines here
    torch.set_num_threads(HEAD_THREADS)  # as the Recognizer runs the eager head
    heads = head_report(model, cfg, args.head_runs, engine_threads)
    report["head_step"] = heads["fp32"]
    report["head_step_int8"] = heads["int8"]
    report["head_int8_speedup"] = heads["int8_speedup"]
    report["head_int8_accuracy"] = heads["int8_accuracy"]
    report["head_step_exported"] = heads["exported"]
    if not args.small:  # the small variant's head (the CPU demo model), for reference
        small = ModelConfig.small()
        report["head_step_small_model"] = head_report(GlimpseClouds(small), small,
                                                      args.head_runs, engine_threads)


def run_head_only(args: argparse.Namespace) -> dict:
    """``--head-only``: the head measurements alone."""
    from glimpse_ros.model.glimpse_clouds import GlimpseClouds

    torch.manual_seed(0)
    cfg = ModelConfig.small() if args.small else ModelConfig()
    report: dict = {"machine": {"cpu": cpu_name(), "threads": HEAD_THREADS,
                                "torch": torch.__version__, "python": platform.python_version()},
                    "model": "small" if args.small else "resnet50", "head_only": True}
    head_part(report, GlimpseClouds(cfg).eval(), cfg, args)
    return report


def format_head(report: dict) -> list[str]:
    """Table lines of the head measurements."""
    lines = [f"head step ({HEAD_THREADS} thread, as run by the Recognizer), ms/frame, fp32 and "
             "int8 timed round robin:"]
    rows = [(report["model"], report["head_step"], report["head_step_int8"],
             report["head_int8_speedup"], report["head_int8_accuracy"])]
    if "head_step_small_model" in report:
        hs = report["head_step_small_model"]
        rows.append(("small", hs["fp32"], hs["int8"], hs["int8_speedup"], hs["int8_accuracy"]))
    lines.append(f"  {'model':<9} {'fp32 med':>9} {'(min)':>7} {'int8 med':>9} {'(min)':>7} "
                 f"{'speed-up':>8}  int8 vs fp32: max |dp|, max |dlogit| (logit std), top-1")
    for name, f, q, speedup, acc in rows:
        lines.append(f"  {name:<9} {f['median_ms']:9.2f} {f['min_ms']:7.2f} {q['median_ms']:9.2f} "
                     f"{q['min_ms']:7.2f} {speedup:7.2f}x  {acc['max_abs_prob_diff']:.4f}, "
                     f"{acc['max_abs_logit_diff']:.4f} ({acc['logit_std']:.1f}), "
                     f"{100 * acc['top1_agreement']:.0f}% of {acc['frames']} frames")
    lines += format_exported_head(report)
    return lines


def format_exported_head(report: dict) -> list[str]:
    """Table lines of the exported head step (fp32) vs the eager head."""
    rows = [(report["model"], report.get("head_step_exported"))]
    if "head_step_small_model" in report:
        rows.append(("small", report["head_step_small_model"].get("exported")))
    threads = (report.get("head_step_exported") or {}).get("threads", {})
    lines = [f"exported head step (threads {threads}; fp32, openvino_int8: int8 weights), "
             "ms/frame, round robin with eager:",
             f"  {'model':<9} {'engine':<12} {'median':>8} {'(min)':>7} {'vs eager':>8}  "
             "max |diff| vs eager: logits, glimpses, assignment"]
    for name, exported in rows:
        if not exported:
            continue
        for engine in ("torch_eager", "onnxruntime", "openvino", "openvino_int8"):
            if engine not in exported:
                continue
            e = exported[engine]
            line = f"  {name:<9} {engine:<12} {e['median_ms']:8.2f} {e['min_ms']:7.2f}"
            if "speedup_vs_eager" in e:
                d = e["max_abs_diff_vs_eager"]
                line += (f" {e['speedup_vs_eager']:7.2f}x  {d['logits']:.1e}, "
                         f"{d['glimpses']:.1e}, {d['assignment']:.1e}")
            lines.append(line)
    return lines


__all__ = ["bench_exported_head", "bench_heads", "format_exported_head", "format_head",
           "head_part", "head_report", "int8_accuracy", "run_head_only"]
