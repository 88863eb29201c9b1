"""Head step measurements of ``make bench``: fp32 vs ``head_precision: int8`` (DESIGN §6).

The Recognizer steps the head with one torch thread (:data:`HEAD_THREADS`); these functions time
it that way, fp32 and int8 round robin, and measure the int8 head's deviation from fp32.
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import time

import torch

from glimpse_ros.config import ModelConfig
from glimpse_ros.bench.common import cpu_name
from glimpse_ros.runtime.recognizer import HEAD_THREADS


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


def head_part(report: dict, model: torch.nn.Module, cfg: ModelConfig,
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
    return lines


__all__ = ["bench_heads", "format_head", "head_part", "head_report", "int8_accuracy",
           "run_head_only"]
