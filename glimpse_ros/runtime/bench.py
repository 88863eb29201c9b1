"""Runtime benchmark: backbone engines, head step, Recognizer cost; writes JSON, prints a table.

``python -m glimpse_ros.runtime.bench --out bench.json`` (``make bench``) measures, in ONE run so
that ratios are taken side by side on the same machine state:

- fp32 SGEMM peak (``torch.mm`` on large square matrices, all configured threads);
- per backbone engine, the clip latency (min and median of ``--runs``) for ResNet-50 at 8x224^2,
  achieved GMAC/s and its fraction of the SGEMM peak (both counted as 2 flops per MAC), and the
  speed-up over torch eager;
- the head's step latency per frame;
- the Recognizer's cost per frame at strides 1, 4 and 8 with the fastest engine, and its overhead
  beyond the backbone (preprocessing, buffer copies, head, smoothing);
- peak RSS of the process.

``--small`` runs the same on the small variant (8x112^2) in seconds. Weights are random: speed
does not depend on them.
"""

from __future__ import annotations

import argparse
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

from glimpse_ros.config import ModelConfig, RecognizerConfig
from glimpse_ros.runtime.engine import create_engine, engine_status, resolve_threads
from glimpse_ros.runtime.recognizer import HEAD_THREADS

LOG = logging.getLogger("glimpse_ros.bench")
TARGETS = {"best_cpu_speedup": 1.6, "fraction_of_sgemm_peak": 0.70, "head_step_ms": 3.0,
           "recognizer_overhead": 0.10}


def cpu_name() -> str:
    """CPU model from /proc/cpuinfo (falls back to platform.processor())."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


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


def bench_head(model: torch.nn.Module, cfg: ModelConfig, runs: int) -> dict:
    """Median and min head step latency per frame (state carried across frames)."""
    h = w = cfg.crop_size // 32
    z = torch.randn(1, cfg.feature_dim, cfg.frames, h, w)
    c = torch.randn(1, cfg.frames, cfg.context_dim)
    head = model.head.eval()

    def window() -> None:
        state = head.initial_state(1)
        for t in range(cfg.frames):
            state, _ = head.step(state, z[:, :, t], c[:, t])

    with torch.inference_mode():
        times = [t / cfg.frames for t in time_runs(window, runs)]
    return {"median_ms": statistics.median(times), "min_ms": min(times)}


def bench_recognizer(ckpt: Path, backend: str, stride: int, cfg: ModelConfig, windows: int,
                     threads: int, cache_dir: str) -> dict:
    """Cost per frame of ``Recognizer.push`` over ``windows`` windows after the first one."""
    from glimpse_ros.runtime.recognizer import Recognizer

    rec = Recognizer(RecognizerConfig(backend=backend, stride=stride, num_threads=threads,
                                      engine_cache_dir=cache_dir), ckpt)
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(4)]
    i = 0
    while not rec.counters["windows"]:  # fill the buffer, run the first window (warm-up)
        rec.push(imgs[i % 4], i / 30)
        i += 1
    backbone_ms, total_ms, frames = 0.0, 0.0, 0
    for _ in range(windows * stride):
        start = time.perf_counter()
        if rec.push(imgs[i % 4], i / 30):
            backbone_ms += rec.timings["backbone"]
        total_ms += (time.perf_counter() - start) * 1e3
        frames += 1
        i += 1
    return {"stride": stride, "frames": frames, "ms_per_frame": total_ms / frames,
            "backbone_ms_per_frame": backbone_ms / frames,
            "overhead": (total_ms - backbone_ms) / backbone_ms}


def run(args: argparse.Namespace) -> dict:
    """Run every measurement and return the report."""
    threads = resolve_threads(args.threads)
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = ModelConfig.small() if args.small else ModelConfig()
    from glimpse_ros.model.checkpoint import save_checkpoint
    from glimpse_ros.model.glimpse_clouds import GlimpseClouds
    from glimpse_ros.runtime.export import onnx_for_checkpoint

    model = GlimpseClouds(cfg).eval()
    shape = (1, 3, cfg.frames, cfg.crop_size, cfg.crop_size)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    report: dict = {"machine": {"cpu": cpu_name(), "threads": threads,
                                "torch": torch.__version__, "python": platform.python_version()},
                    "model": "small" if args.small else "resnet50", "input_shape": list(shape),
                    "runs": args.runs, "targets": TARGETS}
    report["gmac_per_clip"] = count_macs(model.backbone, torch.from_numpy(x)) / 1e9
    report["sgemm_peak_gflops"] = sgemm_peak_gflops(args.sgemm_n)
    LOG.info("SGEMM peak %.1f GFLOP/s; %.1f GMAC per clip", report["sgemm_peak_gflops"],
             report["gmac_per_clip"])

    work = Path(args.cache_dir or tempfile.mkdtemp(prefix="glimpse_bench_"))
    ckpt = save_checkpoint(work / f"bench_{report['model']}.safetensors", model,
                           [f"class_{i}" for i in range(cfg.num_classes)])
    onnx_path = onnx_for_checkpoint(ckpt, model.backbone, work, shape)

    engines: dict = {}
    runners = {}
    for name in args.engines.split(","):
        ok, why = engine_status(name)
        if not ok:
            engines[name] = {"skipped": why}
            continue
        eng = create_engine(name, model.backbone if name == "torch" else onnx_path, "fp32",
                            threads, cache_dir=work, input_shape=shape)
        eng.run(x)  # warm-up
        runners[name] = eng
    # Round robin: engine A, B, C, SGEMM, A, B, C, SGEMM, ... so that load from other processes
    # hits every engine alike and the ratios stay meaningful on a shared machine.
    times: dict[str, list[float]] = {n: [] for n in runners}
    peaks = [report["sgemm_peak_gflops"]]
    for r in range(args.runs):
        for name, eng in runners.items():
            start = time.perf_counter()
            eng.run(x)
            times[name].append((time.perf_counter() - start) * 1e3)
        peaks.append(sgemm_peak_gflops(args.sgemm_n, repeats=2))
        LOG.info("round %d/%d: %s", r + 1, args.runs,
                 ", ".join(f"{n} {t[-1]:.0f} ms" for n, t in times.items()))
    runners.clear()
    report["sgemm_peak_gflops"] = peak = max(peaks)
    for name, t in times.items():
        best_gmacs = report["gmac_per_clip"] / (min(t) / 1e3)
        engines[name] = {"min_ms": min(t), "median_ms": statistics.median(t), "times_ms": t,
                         "gmac_per_s": best_gmacs, "fraction_of_sgemm_peak": 2 * best_gmacs / peak}
    timed = {n: e for n, e in engines.items() if "median_ms" in e}
    if "torch" in timed:
        for e in timed.values():
            e["speedup_vs_torch"] = timed["torch"]["median_ms"] / e["median_ms"]
    report["engines"] = engines
    best = min(timed, key=lambda n: timed[n]["median_ms"])
    report["best_engine"] = best
    report["head_step_all_threads"] = bench_head(model, cfg, args.runs)
    torch.set_num_threads(HEAD_THREADS)  # as the Recognizer runs the head
    report["head_step"] = bench_head(model, cfg, args.runs)
    if not args.small:  # the small variant's head (the CPU demo model), for reference
        report["head_step_small_model"] = bench_head(GlimpseClouds(ModelConfig.small()),
                                                     ModelConfig.small(), args.runs)
    torch.set_num_threads(threads)
    report["recognizer"] = [bench_recognizer(ckpt, best, s, cfg, args.windows, threads,
                                             str(work)) for s in args.strides]
    report["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report["results"] = _check_targets(report)
    return report


def _check_targets(report: dict) -> dict:
    """Compare the measurements with :data:`TARGETS`."""
    timed = {n: e for n, e in report["engines"].items() if "median_ms" in e}
    cpu = [e.get("speedup_vs_torch", 0.0) for n, e in timed.items() if n != "tensorrt"]
    best = timed[report["best_engine"]]
    default = next((r for r in report["recognizer"] if r["stride"] == 4), report["recognizer"][0])
    values = {"best_cpu_speedup": max(cpu, default=0.0),
              "fraction_of_sgemm_peak": best["fraction_of_sgemm_peak"],
              "head_step_ms": report["head_step"]["median_ms"],
              "recognizer_overhead": default["overhead"]}
    return {k: {"value": v, "target": TARGETS[k],
                "met": v <= TARGETS[k] if k in ("head_step_ms", "recognizer_overhead")
                else v >= TARGETS[k]} for k, v in values.items()}


def format_table(report: dict) -> str:
    """Human-readable summary of a report."""
    m = report["machine"]
    lines = [f"{m['cpu']}, {m['threads']} threads, torch {m['torch']}; model {report['model']} "
             f"{report['input_shape']}, {report['gmac_per_clip']:.1f} GMAC/clip; SGEMM peak "
             f"{report['sgemm_peak_gflops']:.0f} GFLOP/s", "",
             f"{'engine':<12} {'min ms':>9} {'median ms':>10} {'GMAC/s':>8} {'% peak':>7} "
             f"{'vs torch':>9}"]
    for name, e in report["engines"].items():
        if "skipped" in e:
            lines.append(f"{name:<12} skipped: {e['skipped']}")
            continue
        lines.append(f"{name:<12} {e['min_ms']:9.1f} {e['median_ms']:10.1f} {e['gmac_per_s']:8.1f}"
                     f" {100 * e['fraction_of_sgemm_peak']:6.0f}% "
                     f"{e.get('speedup_vs_torch', float('nan')):8.2f}x")
    h = report["head_step"]
    ha = report["head_step_all_threads"]
    lines += ["", f"head step ({HEAD_THREADS} thread, as run by the Recognizer): median "
              f"{h['median_ms']:.2f} ms/frame (min {h['min_ms']:.2f}); with {m['threads']} "
              f"threads: median {ha['median_ms']:.2f} (min {ha['min_ms']:.2f})"]
    if "head_step_small_model" in report:
        hs = report["head_step_small_model"]
        lines.append(f"head step, small model: median {hs['median_ms']:.2f} ms/frame "
                     f"(min {hs['min_ms']:.2f})")
    lines += ["",
              f"Recognizer ({report['best_engine']}): stride  ms/frame  backbone ms/frame  "
              "overhead"]
    for r in report["recognizer"]:
        lines.append(f"{'':>25}{r['stride']:6d} {r['ms_per_frame']:9.1f} "
                     f"{r['backbone_ms_per_frame']:18.1f} {100 * r['overhead']:8.1f}%")
    lines += ["", f"peak RSS {report['peak_rss_mb']:.0f} MB", ""]
    for k, r in report["results"].items():
        lines.append(f"target {k:<24} {r['value']:8.3f} (target {r['target']}): "
                     f"{'met' if r['met'] else 'MISSED'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="bench.json", help="JSON report path")
    parser.add_argument("--small", action="store_true", help="small variant, quick")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per engine (N)")
    parser.add_argument("--windows", type=int, default=3, help="Recognizer windows per stride")
    parser.add_argument("--strides", type=lambda s: [int(v) for v in s.split(",")],
                        default=[1, 4, 8])
    parser.add_argument("--threads", type=int, default=0, help="0 = all available cores")
    parser.add_argument("--engines", default="torch,onnxruntime,openvino,tensorrt")
    parser.add_argument("--sgemm-n", type=int, default=2048)
    parser.add_argument("--cache-dir", help="work directory (default: a new temporary one)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    report = run(args)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(format_table(report))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
