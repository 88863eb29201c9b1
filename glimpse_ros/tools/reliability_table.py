"""The README table of a ``make reliability`` report: one row per class the report holds."""

from __future__ import annotations

from typing import Any

from glimpse_ros.tools.reliability_lifecycle import lifecycle_rows
from glimpse_ros.tools.reliability_offline import offline_rows
from glimpse_ros.tools.reliability_parameters import parameter_rows


def readme_table(r: dict[str, Any]) -> str:
    """Markdown rows for the README from a report (the classes it holds)."""
    rows = core_rows(r) if "fuzz_raw" in r else []
    if "annotate_bag_payloads" in r:
        rows += offline_rows(r)
    if "lifecycle_cycles" in r:
        rows += lifecycle_rows(r)
    if "integer_doubles" in r:
        rows += parameter_rows(r)
    lines = ["| Check | Result |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows]
    return "\n".join(lines)


def core_rows(r: dict[str, Any]) -> list[tuple[str, str]]:
    """Rows of the DDS, fault and in-process classes."""
    fr, fc, ov, so = r["fuzz_raw"], r["fuzz_compressed"], r["overload"], r["soak"]
    mal = fr["malformed"] + fc["malformed"]
    lost = fr["lost_in_transport"] + fc["lost_in_transport"]
    counted = fr["rejections_counted_total"] + fc["rejections_counted_total"]
    starts = r["node_startup"]
    valid = fr["valid_frames"] + fc["valid_frames"]
    kinds = len(fr["mutations"]) + len(fc["mutations"])
    done = fr["frames_processed"] + fc["frames_processed"]
    want = fr["outputs_expected"] + fc["outputs_expected"]
    rows = [
        ("Bad inputs tried", f"{mal} malformed Image/CompressedImage messages ({kinds} mutation "
         f"kinds) among {valid} valid frames, over DDS; {len(r['bad_parameters'])} invalid "
         "parameters; 3 pickle files"),
        ("Nothing lost", f"{counted}/{mal} rejections counted under their reason; {done}/{want} "
         f"valid frames labelled; {lost} messages lost in transport; node alive"),
        ("Load held", f"{ov['width']}x{ov['height']} rgb8 offered at {ov['published_fps']} fps "
         f"for {ov['seconds']:.0f} s: {ov['frames_received']} frames reached the node "
         f"({ov['lost_in_transport']} lost in DDS transport), {ov['processed_fps']} fps "
         f"processed, {ov['dropped_frames']} dropped from the queue (reported); latency p95 "
         f"{ov['latency_p95_ms_first']}-{ov['latency_p95_ms_max']} ms (bound "
         f"{ov['latency_bound_loaded_ms']} ms under load, {ov['latency_bound_compute_ms']} ms "
         f"compute only); RSS +{ov['rss_growth_mb']} MB after warm-up"),
        ("Soak", f"{so['frames']} frames stream mode: {so['nonfinite_outputs']} NaN/Inf outputs, "
         f"{so['nonfinite_states']} NaN/Inf states, RSS +{so['rss_growth_mb']} MB, "
         f"{so['resets']} resets and {so['reset_log_lines']} reset log lines (one per kind and "
         f"second) for {so['loops'] - 1} loop restarts"),
        ("Faults survived", f"corrupt ONNX cache: {r['corrupt_onnx_cache']['outcome']}; corrupt "
         f"TensorRT engine: {r['corrupt_tensorrt_cache']['decision']}; camera stop: WARN after "
         f"{r['stale']['warn_after_stop_s']} s, OK {r['stale']['ok_after_resume_s']} s after "
         f"resume; missing/mismatched/pickle checkpoint: start-up exit "
         f"{'/'.join(str(starts[k]['returncode']) for k in ('missing', 'mismatched', 'pickle'))}"
         f" naming the file; pickle executed: {r['pickle_executed']}"),
    ]
    hm, sb, ch, rf = r["hostile_model_files"], r["scan_bombs"], r["churn"], r["reset_flood"]
    hs = r["hostile_model_startup"]
    ups = list(r["startup_refusals"].values()) + list(hs.values())
    rows += [
        ("Hostile model files", f"{sum(bool(m) for m in hm.values())}/{len(hm)} refused before "
         f"allocation (config bounds/types, header shapes/dtypes/size, NaN/Inf/1e38 weights); "
         f"node start-up exit {'/'.join(str(x['returncode']) for x in hs.values())} naming "
         f"file and field"),
        ("Start-up refusals", f"{sum(x['returncode'] == 2 for x in ups)}/{len(ups)} exit 2 "
         f"(params file non-UTF-8/directory/missing, bad topic, hostile model), "
         f"{sum(x['traceback'] for x in ups)} tracebacks; SIGINT during start-up: exit "
         f"{'/'.join(str(x['returncode']) for x in r['sigint_startup'].values())}"),
        ("Scan bombs", f"{sb['bombs_sent']} progressive JPEGs {sb['width']}x{sb['height']} with "
         f"{sb['scans']} scans ({sb['bytes'] // 1024} KB) at 4 Hz: "
         f"{sb['rejected_too_many_scans']} refused from the header; ~/reset max "
         f"{sb['reset_response_max_s']} s over {sb['reset_calls']} calls, /diagnostics max gap "
         f"{sb['diagnostics_gap_max_s']} s"),
        ("Churn", f"size alternating every frame: {ch['alternating_size_labels']} labels for 40 "
         f"frames; stamps 1 ms back every third frame: {ch['stamp_jitter_labels']} labels, "
         f"{ch['jitter_dropped']} frames dropped as jitter; {rf['resets']} resets in process: "
         f"{rf['reset_keys']} keys, Python heap +{rf['python_heap_growth_kb']} KB"),
    ]
    return rows


__all__ = ["core_rows", "readme_table"]
