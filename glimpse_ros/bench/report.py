"""Text table of a ``make bench`` report (the JSON holds every figure; this is the summary)."""

from __future__ import annotations

from glimpse_ros.bench.head import format_head
from glimpse_ros.bench.preprocess import format_preprocess


def format_table(report: dict) -> str:
    """Human-readable summary of a report."""
    m = report["machine"]
    detail = m.get("cpu_detail", {})
    lines = [f"{m['cpu']} (family {detail.get('cpu_family')} model {detail.get('model')}; "
             f"{' '.join(detail.get('flags', []))}), {m['threads']} threads, torch {m['torch']}; "
             f"model {report['model']} {report['input_shape']}, {report['gmac_per_clip']:.1f} "
             f"GMAC/clip; SGEMM peak {report['sgemm_peak_gflops']:.0f} GFLOP/s", "",
             f"{'engine':<15} {'min ms':>9} {'median ms':>10} {'GMAC/s':>8} {'% peak':>7} "
             f"{'speed-up':>9}"]
    for name, e in report["engines"].items():
        if "skipped" in e:
            lines.append(f"{name:<15} skipped: {e['skipped']}")
            continue
        up, ref = ((e["speedup_vs_fp32"], "fp32") if "speedup_vs_fp32" in e
                   else (e.get("speedup_vs_torch", float("nan")), "torch"))
        lines.append(f"{name:<15} {e['min_ms']:9.1f} {e['median_ms']:10.1f} "
                     f"{e['gmac_per_s']:8.1f} {100 * e['fraction_of_sgemm_peak']:6.0f}% "
                     f"{up:8.2f}x vs {ref}")
    ha = report["head_step_all_threads"]
    if "preprocess" in report:
        lines += [""] + format_preprocess(report["preprocess"])
    lines += [""] + format_head(report)
    lines.append(f"head step fp32 with {m['threads']} threads: median {ha['median_ms']:.2f} "
                 f"(min {ha['min_ms']:.2f})")
    lines += ["", format_recognizer(report)]
    if "precision_deviation" in report:
        d = report["precision_deviation"]
        lines += ["", f"deviation from fp32 on {d['model']} ({d['path']}, {d['frames']} frames "
                  f"of {d['videos']} held-out synthetic videos): max |dp|, mean |dp|, top-1 "
                  "agreement"]
        for name, c in d["configs"].items():
            lo, hi = c.get("top1_agreement_ci95", (float("nan"),) * 2)
            lines.append(f"  {name:<18} {c['max_abs_prob_diff']:.4f}  "
                         f"{c['mean_abs_prob_diff']:.5f}  {100 * c['top1_agreement']:.2f}% "
                         f"(95% {100 * lo:.1f}-{100 * hi:.1f}; published label "
                         f"{100 * c.get('published_label_agreement', float('nan')):.2f}%)")
        r = report["ratios"]
        if "fastest_stream" in r and "best_stream_min_agreement" in r:
            lines.append(f"fastest stream {r['fastest_stream']} {r['fastest_stream_fps']:.1f} fps;"
                         f" fastest agreeing >= {100 * r['best_stream_min_agreement']:.0f}%: "
                         f"{r['best_stream']} {r['best_stream_fps']:.1f} fps")
    lines += ["", f"peak RSS {report['peak_rss_mb']:.0f} MB", ""]
    for k, r in report["results"].items():
        lines.append(f"target {k:<36} {r['value']:8.3f} (target {r['target']}): "
                     f"{'met' if r['met'] else 'MISSED'}")
    return "\n".join(lines)


def format_recognizer(report: dict) -> str:
    """Table of the windowed and streamed Recognizer variants."""
    s = report["recognizer_settings"]
    lines = [f"Recognizer ({report['recognizer_backend']}, round robin, {s['rounds']} rounds of "
             f"{s['frames_per_round']} frames; latency at {s['camera_fps']:.0f} fps):",
             f"  {'variant':<20} {'ms/frame':>9} {'(min)':>7} {'cpu ms':>7} {'backbone':>9} "
             f"{'head':>6} {'fps':>6} {'latency':>8} {'(max)':>7} {'vs fp32':>8}"]
    for v in report["recognizer"] + list(report["recognizer_stream"].values()):
        name = v["name"] if v["path"] == "window" else f"stream_{v['name']}"
        up = f"{v['speedup_vs_fp32']:7.2f}x" if "speedup_vs_fp32" in v else ""
        lines.append(f"  {name:<20} {v['ms_per_frame']:9.1f} {v['ms_per_frame_min']:7.1f} "
                     f"{v['cpu_ms_per_frame']:7.1f} {v['backbone_ms_per_frame']:9.1f} "
                     f"{v['head_ms_per_frame']:6.1f} {v['fps']:6.1f} {v['latency_ms']:8.1f} "
                     f"{v['latency_max_ms']:7.1f} {up:>8}")
    c = report.get("clip_engine")
    if c:
        lines.append(f"  clip engine alone: median {c['median_ms']:.1f} ms (min "
                     f"{c['min_ms']:.1f}, cpu {c['cpu_ms']:.1f}), per frame "
                     f"{c['per_frame_ms']:.1f} ms; external load "
                     f"{c['external_load_cores']:.2f} cores")
    r = report["ratios"]
    lines.append("  ratios: " + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                                          for k, v in r.items()))
    return "\n".join(lines)


__all__ = ["format_recognizer", "format_table"]
