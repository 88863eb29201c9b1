"""Runtime benchmark: backbone engines, head step, Recognizer cost; writes JSON, prints a table.

``python -m glimpse_ros.bench --out bench.json`` (``make bench``) measures, in ONE run so
that ratios are taken side by side on the same machine state:

- fp32 SGEMM peak (``torch.mm`` on large square matrices, all configured threads);
- per backbone engine (``name[:precision]``, e.g. ``openvino:bf16``), the clip latency (min and
  median of ``--runs``) for ResNet-50 at 8x224^2, achieved GMAC/s and its fraction of the SGEMM
  peak (both counted as 2 flops per MAC), and the speed-up over torch eager (fp32 engines) or
  over the same engine in fp32 (bf16, int8); a precision this CPU cannot run natively is skipped;
- preprocessing per camera frame (640x480, 1280x720, 1920x1080), the two-pass
  ``preprocess_frame`` vs the plain resize + normalise (:mod:`glimpse_ros.bench.preprocess`);
- the head's step latency per frame, fp32 and ``head_precision: int8`` measured round robin,
  and the int8 head's deviation from fp32 (probabilities, logits, top-1) on random windows;
- the Recognizer end to end with the fastest fp32 engine (:mod:`glimpse_ros.bench.stream`):
  windowed at strides 1, 4, 8 (``recognizer``: ``{stride, ms_per_frame, ...}``) and streamed
  with a causal model in every native precision (``recognizer_stream``), round robin, with
  frame-to-label latency, own CPU time and the machine's external load;
- the deviation of bf16 / int8 backbones and the int8 head from fp32 on the demo model
  (:mod:`glimpse_ros.bench.precision`); the fps targets then count the fastest streamed
  variant whose top-1 agreement is at least :data:`MIN_AGREEMENT` (``best_stream``; the
  fastest of all is ``fastest_stream``);
- peak RSS of the process.

Why windows looked slower at small strides: an earlier version measured the strides one after
the other (tens of seconds apart) and averaged three windows each, on a machine shared with other
jobs. Its figures (backbone per window 521 ms at stride 1, 447 ms at stride 4, 275 ms at stride 8,
291 ms for the engine alone) followed the other jobs' load, not the stride. Measured round robin
(Zen 4, 2 cores, OpenVINO fp32, 6 rounds) with this process's CPU time per backbone call next to
the wall time, strides 1, 4, 8 and the engine alone each took a median 1.20-1.22 s of CPU per
clip (2 threads x ~0.6 s; an idle run's wall time is ~0.56 s) while their wall times ranged from
0.86 to 3.2 s with the external load. Thread contention inside the process (spinning pools),
per-window re-allocation or infer-request re-creation would all have added CPU time at small
strides; none did. Hence: everything here runs round robin and reports own CPU time and the
machine's external load next to wall time.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from glimpse_ros.config import ModelConfig
from glimpse_ros.bench.common import CpuMeter, cpu_description, cpu_name
from glimpse_ros.bench.head import bench_heads, format_head, head_part, run_head_only
from glimpse_ros.bench.preprocess import bench_preprocess
from glimpse_ros.bench.report import format_table
from glimpse_ros.runtime.engine import resolve_threads
from glimpse_ros.runtime.factory import create_engine, engine_status

LOG = logging.getLogger("glimpse_ros.bench")
# Limits; the *_over_* and *_fps values are ratios measured in one run (DESIGN §6).
TARGETS = {"best_cpu_speedup": 1.6, "fraction_of_sgemm_peak": 0.70, "head_step_ms": 3.0,
           "head_step_ms_int8": 3.0, "head_step_ms_exported_int8": 3.0,
           "recognizer_overhead": 0.10,
           "stride1_over_stream": 6.0, "stride4_over_stream": 1.5,
           "stream_backbone_over_clip_per_frame": 1.3,
           "stream_backbone_over_clip_per_frame_bf16": 1.3,
           "stream_backbone_over_clip_per_frame_int8": 1.3,
           "stream_backbone_over_clip_per_frame_int8_mixed": 1.3,
           "best_stream_fps": 30.0, "best_stream_fps_stretch": 60.0}
MIN_AGREEMENT = 0.98  # top-1 agreement with fp32 a precision needs for the fps targets
AT_MOST = ("head_step_ms", "head_step_ms_int8", "head_step_ms_exported_int8",
           "recognizer_overhead", "stream_backbone_over_clip_per_frame",
           "stream_backbone_over_clip_per_frame_bf16", "stream_backbone_over_clip_per_frame_int8",
           "stream_backbone_over_clip_per_frame_int8_mixed")


def sgemm_peak_gflops(n: int, repeats: int = 5) -> float:
    """Best fp32 GFLOP/s of an ``n x n`` matrix product with torch's current thread count."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best / 1e9


def count_macs(module: torch.nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of every convolution and linear layer for input ``x``."""
    total = 0

    def hook(m: torch.nn.Module, _inp, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(m, torch.nn.Conv3d):
            total += out.numel() * (m.in_channels // m.groups) * int(np.prod(m.kernel_size))
        elif isinstance(m, torch.nn.Linear):
            total += out.numel() * m.in_features

    handles = [m.register_forward_hook(hook) for m in module.modules()
               if isinstance(m, (torch.nn.Conv3d, torch.nn.Linear))]
    with torch.inference_mode():
        module(x)
    for h in handles:
        h.remove()
    return total


def time_runs(fn, runs: int) -> list[float]:
    """Wall times in ms of ``runs`` calls of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def bench_engines(specs: list[str], model: torch.nn.Module, onnx_path: Path, x: np.ndarray,
                  threads: int, work: Path, runs: int, sgemm_n: int, report: dict) -> dict:
    """Clip latency of every engine spec ``name[:precision]``, round robin with the SGEMM peak."""
    engines: dict = {}
    runners = {}
    for spec in specs:
        name, _, prec = spec.partition(":")
        ok, why = engine_status(name)
        if not ok:
            engines[spec] = {"skipped": why}
            continue
        try:
            eng = create_engine(name, model.backbone if name == "torch" else onnx_path,
                                prec or "fp32", threads, cache_dir=work, input_shape=x.shape)
        except ValueError as err:  # a precision this CPU does not run natively
            engines[spec] = {"skipped": str(err)}
            continue
        eng.run(x)  # warm-up
        runners[spec] = eng
    # Round robin: engine A, B, C, SGEMM, A, B, C, SGEMM, ... so that load from other processes
    # hits every engine alike and the ratios stay meaningful on a shared machine.
    times: dict[str, list[float]] = {n: [] for n in runners}
    meters = {n: CpuMeter() for n in runners}
    peaks = [report["sgemm_peak_gflops"]]
    for r in range(runs):
        for name, eng in runners.items():
            start = time.perf_counter()
            with meters[name]:
                eng.run(x)
            times[name].append((time.perf_counter() - start) * 1e3)
        peaks.append(sgemm_peak_gflops(sgemm_n, repeats=2))
        LOG.info("round %d/%d: %s", r + 1, runs,
                 ", ".join(f"{n} {t[-1]:.0f} ms" for n, t in times.items()))
    runners.clear()
    report["sgemm_peak_gflops"] = peak = max(peaks)
    for name, t in times.items():
        best_gmacs = report["gmac_per_clip"] / (min(t) / 1e3)
        engines[name] = {"min_ms": min(t), "median_ms": statistics.median(t), "times_ms": t,
                         "cpu_ms": 1e3 * meters[name].own_s / len(t),
                         "external_load_cores": meters[name].external_load,
                         "gmac_per_s": best_gmacs, "fraction_of_sgemm_peak": 2 * best_gmacs / peak}
    timed = {n: e for n, e in engines.items() if "median_ms" in e}
    for n, e in timed.items():
        name, _, prec = n.partition(":")
        if prec and name in timed:
            e["speedup_vs_fp32"] = timed[name]["median_ms"] / e["median_ms"]
        elif "torch" in timed:
            e["speedup_vs_torch"] = timed["torch"]["median_ms"] / e["median_ms"]
    return engines


def save_models(cfg: ModelConfig, work: Path, name: str) -> tuple[Path, Path, torch.nn.Module]:
    """Random-weight symmetric and causal checkpoints of ``cfg``; the symmetric model."""
    from glimpse_ros.model.checkpoint import save_checkpoint
    from glimpse_ros.model.glimpse_clouds import GlimpseClouds

    labels = [f"class_{i}" for i in range(cfg.num_classes)]
    model = GlimpseClouds(cfg).eval()
    symmetric = save_checkpoint(work / f"bench_{name}.safetensors", model, labels)
    causal_cfg = dataclasses.replace(cfg, temporal_padding="causal")
    causal = save_checkpoint(work / f"bench_{name}_causal.safetensors",
                             GlimpseClouds(causal_cfg).eval(), labels)
    return symmetric, causal, model


def run(args: argparse.Namespace) -> dict:
    """Run every measurement and return the report."""
    from glimpse_ros.bench.stream import build_variants, measure, ratios
    from glimpse_ros.runtime.export.cache import onnx_for_checkpoint

    threads = resolve_threads(args.threads)
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = ModelConfig.small() if args.small else ModelConfig()
    shape = (1, 3, cfg.frames, cfg.crop_size, cfg.crop_size)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    report: dict = {"machine": {"cpu": cpu_name(), "cpu_detail": cpu_description(),
                                "threads": threads, "torch": torch.__version__,
                                "python": platform.python_version()},
                    "model": "small" if args.small else "resnet50", "input_shape": list(shape),
                    "runs": args.runs, "targets": TARGETS}
    work = Path(args.cache_dir or tempfile.mkdtemp(prefix="glimpse_bench_"))
    symmetric, causal, model = save_models(cfg, work, report["model"])
    report["gmac_per_clip"] = count_macs(model.backbone, torch.from_numpy(x)) / 1e9
    report["sgemm_peak_gflops"] = sgemm_peak_gflops(args.sgemm_n)
    LOG.info("SGEMM peak %.1f GFLOP/s; %.1f GMAC per clip", report["sgemm_peak_gflops"],
             report["gmac_per_clip"])
    onnx_path = onnx_for_checkpoint(symmetric, model.backbone, work, shape)
    report["engines"] = bench_engines(args.engines.split(","), model, onnx_path, x, threads,
                                      work, args.runs, args.sgemm_n, report)
    timed = {n: e for n, e in report["engines"].items() if "median_ms" in e and ":" not in n}
    best = min(timed, key=lambda n: timed[n]["median_ms"])
    report["best_engine"] = best
    report["preprocess"] = bench_preprocess(cfg.resize_size, cfg.crop_size)
    report["head_step_all_threads"] = bench_heads({"fp32": model.head}, cfg, args.runs)["fp32"]
    head_part(report, model, cfg, args)
    torch.set_num_threads(threads)
    del model
    # One engine for every Recognizer variant: OpenVINO (it runs bf16 and int8), else the best.
    backend = "openvino" if engine_status("openvino")[0] else best
    report["recognizer_backend"] = backend
    variants = build_variants(symmetric, causal, args.strides, backend, threads, str(work))
    measured = measure(variants, cfg.frames, args.rounds)
    variants.clear()
    report["recognizer"] = [v for v in measured["variants"] if v["path"] == "window"]
    report["recognizer_stream"] = {v["name"]: v for v in measured["variants"]
                                   if v["path"] == "stream"}
    report["clip_engine"] = measured.get("clip_engine")
    report["recognizer_settings"] = {k: measured[k] for k in ("camera_fps", "rounds",
                                                              "frames_per_round")}
    report["ratios"] = ratios(measured)
    report["ratios"].update(step_over_clip(report, cfg.frames))
    if not args.no_deviation:
        report["precision_deviation"] = _deviation(backend, threads, work)
    report["ratios"].update(qualified_best(report))  # without the deviation: fp32 only
    report["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report["results"] = _check_targets(report)
    return report


def step_over_clip(report: dict, frames: int) -> dict:
    """Streamed backbone step per frame / that precision's clip engine per frame (clip / T).

    The fp32 ratio (``stream_backbone_over_clip_per_frame``) comes from :func:`ratios`, timed
    round robin with the clip; bf16, int8 and int8_mixed use the ``openvino:<precision>`` clip
    engines timed earlier in the same run, and the streamed variant of that precision with the
    fp32 head (int8_mixed streams with the int8 head only: its backbone part is the same).
    """
    out = {}
    for prec in ("bf16", "int8", "int8_mixed"):
        stream = (report["recognizer_stream"].get(prec)
                  or report["recognizer_stream"].get(f"{prec}+head_int8"))
        clip = report["engines"].get(f"openvino:{prec}", {})
        if stream and "median_ms" in clip:
            out[f"stream_backbone_over_clip_per_frame_{prec}"] = (
                stream["backbone_ms_per_frame"] / (clip["median_ms"] / frames))
    return out


def qualified_best(report: dict, min_agreement: float = MIN_AGREEMENT) -> dict:
    """The fastest streamed variant whose top-1 agreement with fp32 is at least ``min_agreement``.

    ``ratios`` names the fastest streamed variant by speed alone (``fastest_stream``); the 30
    and 60 fps targets hold for the best precision that agrees with fp32 (issue 18), measured
    on the demo model: ``best_stream``, ``best_stream_fps`` and ``best_stream_fps_stretch`` are
    the fastest qualifying variant's. fp32 variants (``+head_torch`` runs the same fp32 head
    eagerly) agree by definition; without the deviation (``--no-deviation``) no other variant
    qualifies. The rule is the point estimate of the agreement (its 95 % interval is reported
    beside it, not used here).
    """
    configs = report.get("precision_deviation", {}).get("configs", {})
    out: dict = {}
    qualified = []
    for v in report["recognizer_stream"].values():
        name = v["name"].removesuffix("+head_torch")
        agreement = 1.0 if name == "fp32" else configs.get(name, {}).get("top1_agreement")
        v["top1_agreement"] = agreement
        if agreement is not None and agreement >= min_agreement:
            qualified.append(v)
    if qualified:
        best = min(qualified, key=lambda v: v["ms_per_frame"])
        out.update(best_stream=best["name"], best_stream_fps=best["fps"],
                   best_stream_fps_stretch=best["fps"],
                   best_stream_agreement=best["top1_agreement"],
                   best_stream_min_agreement=min_agreement)
    return out


def _deviation(backend: str, threads: int, work: Path) -> dict:
    """bf16 / int8 (backbone) and int8 (head) vs fp32 on the demo model; see bench_precision."""
    from glimpse_ros.bench.precision import deviation
    from glimpse_ros.bench.stream import stream_precisions
    from glimpse_ros.runtime.model_files import resolve_model_path

    configs = stream_precisions(backend) + [("fp32", "int8")]
    return deviation(resolve_model_path(""), configs, backend, threads, str(work))


def _check_targets(report: dict) -> dict:
    """Compare the measurements with :data:`TARGETS`."""
    timed = {n: e for n, e in report["engines"].items() if "median_ms" in e}
    cpu = [e.get("speedup_vs_torch", 0.0) for n, e in timed.items() if n != "tensorrt"]
    best = timed[report["best_engine"]]
    default = next((r for r in report["recognizer"] if r["stride"] == 4), report["recognizer"][0])
    values = {"best_cpu_speedup": max(cpu, default=0.0),
              "fraction_of_sgemm_peak": best["fraction_of_sgemm_peak"],
              "head_step_ms": report["head_step"]["median_ms"],
              "head_step_ms_int8": report["head_step_int8"]["median_ms"],
              "recognizer_overhead": default["overhead"]}
    exported_int8 = report.get("head_step_exported", {}).get("openvino_int8")
    if exported_int8:
        values["head_step_ms_exported_int8"] = exported_int8["median_ms"]
    values.update({k: v for k, v in report["ratios"].items() if k in TARGETS})
    return {k: {"value": v, "target": TARGETS[k],
                "met": v <= TARGETS[k] if k in AT_MOST else v >= TARGETS[k]}
            for k, v in values.items()}


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="bench.json", help="JSON report path")
    parser.add_argument("--small", action="store_true", help="small variant, quick")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per engine (N)")
    parser.add_argument("--head-runs", type=int, default=10,
                        help="timed windows of T frames per head variant")
    parser.add_argument("--head-only", action="store_true",
                        help="measure only the head step (fp32 and int8)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="Recognizer rounds (each variant pushes T frames per round)")
    parser.add_argument("--strides", type=lambda s: [int(v) for v in s.split(",")],
                        default=[1, 4, 8], help="windowed strides (must divide T)")
    parser.add_argument("--threads", type=int, default=0, help="0 = all available cores")
    parser.add_argument("--engines", default="torch,onnxruntime,openvino,openvino:bf16,"
                        "openvino:int8,openvino:int8_mixed,tensorrt",
                        help="name[:precision], comma separated")
    parser.add_argument("--no-deviation", action="store_true",
                        help="skip the bf16/int8 deviation on the demo model")
    parser.add_argument("--sgemm-n", type=int, default=2048)
    parser.add_argument("--cache-dir", help="work directory (default: a new temporary one)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    report = run_head_only(args) if args.head_only else run(args)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print("\n".join(format_head(report)) if args.head_only else format_table(report))
    print(f"\nwrote {args.out}")


__all__ = ["TARGETS", "bench_engines", "count_macs", "cpu_name", "format_table", "main", "run",
           "sgemm_peak_gflops"]


if __name__ == "__main__":
    main()
