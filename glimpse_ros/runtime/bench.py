"""Runtime benchmark: backbone engines, head step, Recognizer cost; writes JSON, prints a table.

``python -m glimpse_ros.runtime.bench --out bench.json`` (``make bench``) measures, in ONE run so
that ratios are taken side by side on the same machine state:

- fp32 SGEMM peak (``torch.mm`` on large square matrices, all configured threads);
- per backbone engine, the clip latency (min and median of ``--runs``) for ResNet-50 at 8x224^2,
  achieved GMAC/s and its fraction of the SGEMM peak (both counted as 2 flops per MAC), and the
  speed-up over torch eager;
- the head's step latency per frame, fp32 and ``head_precision: int8`` measured round robin,
  and the int8 head's deviation from fp32 (probabilities, logits, top-1) on random windows;
- the Recognizer's cost per frame at strides 1, 4 and 8 with the fastest engine, and its overhead
  beyond the backbone (preprocessing, buffer copies, head, smoothing);
- peak RSS of the process.

``--small`` runs the same on the small variant (8x112^2) in seconds; ``--head-only`` measures only
the head (both variants) and skips engines and the Recognizer. Weights are random: speed does not
depend on them.
"""

from __future__ import annotations

import argparse
import copy
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
           "head_step_ms_int8": 3.0, "recognizer_overhead": 0.10}


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


def _random_window(cfg: ModelConfig, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random non-negative backbone outputs ``Z (1, D, T, h, w)``, ``c (1, T, Dc)`` (post-ReLU)."""
    gen = torch.Generator().manual_seed(seed)
    h = w = cfg.crop_size // 32
    z = torch.randn(1, cfg.feature_dim, cfg.frames, h, w, generator=gen).relu()
    c = torch.randn(1, cfg.frames, cfg.context_dim, generator=gen).relu()
    return z, c


def bench_heads(heads: dict[str, torch.nn.Module], cfg: ModelConfig, runs: int) -> dict:
    """Median and min step latency per frame of each head (state carried across frames).

    The heads are timed round robin (window of A, window of B, A, B, ...) so that load from other
    processes affects them alike and their ratio holds on a shared machine.
    """
    z, c = _random_window(cfg, 0)

    def window(head: torch.nn.Module) -> None:
        state = head.initial_state(1)
        for t in range(cfg.frames):
            state, _ = head.step(state, z[:, :, t], c[:, t])

    times: dict[str, list[float]] = {name: [] for name in heads}
    with torch.inference_mode():
        for head in heads.values():
            window(head)  # warm-up
        for _ in range(runs):
            for name, head in heads.items():
                start = time.perf_counter()
                window(head)
                times[name].append((time.perf_counter() - start) * 1e3 / cfg.frames)
    return {name: {"median_ms": statistics.median(t), "min_ms": min(t), "times_ms": t}
            for name, t in times.items()}


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


def head_report(model: torch.nn.Module, cfg: ModelConfig, runs: int) -> dict:
    """fp32 and int8 step latency (round robin) and the int8 deviation for one model size."""
    from glimpse_ros.model.quantize import prepare_head

    head = model.head.eval()
    # The inference copies the Recognizer steps (fp32 is exact, see glimpse_ros.model.quantize).
    timed = bench_heads({"fp32": prepare_head(head, "fp32"), "int8": prepare_head(head, "int8")},
                        cfg, runs)
    timed["int8_speedup"] = timed["fp32"]["median_ms"] / timed["int8"]["median_ms"]
    timed["int8_accuracy"] = int8_accuracy(head, cfg)
    return timed


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
    report["head_step_all_threads"] = bench_heads({"fp32": model.head}, cfg, args.runs)["fp32"]
    _head_part(report, model, cfg, args)
    torch.set_num_threads(threads)
    report["recognizer"] = [bench_recognizer(ckpt, best, s, cfg, args.windows, threads,
                                             str(work)) for s in args.strides]
    report["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report["results"] = _check_targets(report)
    return report


def _head_part(report: dict, model: torch.nn.Module, cfg: ModelConfig,
               args: argparse.Namespace) -> None:
    """Head step latency with the Recognizer's thread count, fp32 and int8 (both model sizes)."""
    from glimpse_ros.model.glimpse_clouds import GlimpseClouds

    torch.set_num_threads(HEAD_THREADS)  # as the Recognizer runs the head
    heads = head_report(model, cfg, args.head_runs)
    report["head_step"] = heads["fp32"]
    report["head_step_int8"] = heads["int8"]
    report["head_int8_speedup"] = heads["int8_speedup"]
    report["head_int8_accuracy"] = heads["int8_accuracy"]
    if not args.small:  # the small variant's head (the CPU demo model), for reference
        small = ModelConfig.small()
        report["head_step_small_model"] = head_report(GlimpseClouds(small), small,
                                                      args.head_runs)


def run_head_only(args: argparse.Namespace) -> dict:
    """``--head-only``: the head measurements alone."""
    from glimpse_ros.model.glimpse_clouds import GlimpseClouds

    torch.manual_seed(0)
    cfg = ModelConfig.small() if args.small else ModelConfig()
    report: dict = {"machine": {"cpu": cpu_name(), "threads": HEAD_THREADS,
                                "torch": torch.__version__, "python": platform.python_version()},
                    "model": "small" if args.small else "resnet50", "head_only": True}
    _head_part(report, GlimpseClouds(cfg).eval(), cfg, args)
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
    return lines


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
    return {k: {"value": v, "target": TARGETS[k],
                "met": v <= TARGETS[k] if k in ("head_step_ms", "head_step_ms_int8",
                                                "recognizer_overhead")
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
    ha = report["head_step_all_threads"]
    lines += [""] + format_head(report)
    lines.append(f"head step fp32 with {m['threads']} threads: median {ha['median_ms']:.2f} "
                 f"(min {ha['min_ms']:.2f})")
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
    parser.add_argument("--head-runs", type=int, default=10,
                        help="timed windows of T frames per head variant")
    parser.add_argument("--head-only", action="store_true",
                        help="measure only the head step (fp32 and int8)")
    parser.add_argument("--windows", type=int, default=3, help="Recognizer windows per stride")
    parser.add_argument("--strides", type=lambda s: [int(v) for v in s.split(",")],
                        default=[1, 4, 8])
    parser.add_argument("--threads", type=int, default=0, help="0 = all available cores")
    parser.add_argument("--engines", default="torch,onnxruntime,openvino,tensorrt")
    parser.add_argument("--sgemm-n", type=int, default=2048)
    parser.add_argument("--cache-dir", help="work directory (default: a new temporary one)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    report = run_head_only(args) if args.head_only else run(args)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print("\n".join(format_head(report)) if args.head_only else format_table(report))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
