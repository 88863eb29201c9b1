"""The offline tools and the node's start-up under hostile input (``make reliability`` classes).

Every input of :mod:`glimpse_ros.tools.reliability_inputs` goes through ``glimpse-annotate`` (in
this process, the shipped demo model on torch: an exception out of ``main`` is a failure) and
through ``python -m glimpse_ros.replay`` (its own process). An input *held* when the tool exits 0
with the usable frames, or 2 when there are none, counts every skipped input under its reason,
prints no traceback and names only files it wrote. Replay arguments out of range must exit 2
naming the argument; SIGTERM during the recognizer's imports must exit 0. Streams whose every
frame the node refuses must give a WARN naming the reason, not "stale".
"""

from __future__ import annotations

import contextlib
import io
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from glimpse_ros.ros.discovery import local_env
from glimpse_ros.tools.reliability_inputs import (Hostile, hostile_bags, hostile_folders,
                                                  oversized_video)

REPO = Path(__file__).resolve().parents[2]
BAD_REPLAY_ARGS = [["--fps", "-5"], ["--fps", "nan"], ["--fps", "0"], ["--fps", "inf"],
                   ["--hfov", "0"], ["--hfov", "180"], ["--hfov", "-30"],
                   ["--width", "-10", "--height", "10"], ["--width", "0", "--height", "0"],
                   ["--width", "100000", "--height", "100000"], ["--duration", "nan"],
                   ["--wait", "-1"], ["--max-frame-pixels", "0"], ["--fps", "abc"]]
SIGTERM_AT = ("_multiarray_umath", "cv2", "_rclpy_pybind11")


def expected_summary(h: Hostile) -> str:
    """The ``inputs: ...`` text a tool prints for ``h``."""
    if not h.skipped:
        return "none skipped"
    parts = ", ".join(f"{n} {r}" for r, n in sorted(h.skipped.items()))
    return f"{sum(h.skipped.values())} skipped ({parts})"


def annotate_held(h: Hostile, out: Path) -> tuple[bool, str]:
    """Run glimpse-annotate on ``h``; (held, what happened)."""
    from glimpse_ros.tools.annotate import main

    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main([str(h.path), "--out", str(out), "--backend", "torch", "--no-progress"])
    except BaseException as err:  # noqa: BLE001 - any escape is the failure being measured
        return False, f"raised {type(err).__name__}: {err}"
    text = stdout.getvalue() + stderr.getvalue()
    want = 0 if h.good else 2
    ok = code == want and expected_summary(h) in text and "Traceback" not in text
    if code == 0:
        summary = stdout.getvalue().strip().splitlines()[-1]
        named = [Path(p.strip()) for p in summary.split("->", 1)[1].split(",")]
        ok = ok and all(p.is_file() for p in named)
        meta = json.loads((out / "frames.json").read_text())
        ok = ok and meta["frames_read"] == h.good
        if h.fps is not None:
            ok = ok and abs(meta["fps"] - h.fps) < 1e-3 * h.fps
    return ok, f"exit {code}: {text.strip().splitlines()[-1][:200] if text.strip() else ''}"


def replay_process(args: list[str], domain: int, timeout: float = 120) -> tuple[int, str]:
    """``python -m glimpse_ros.replay ARGS``; (exit code, output)."""
    env = local_env(domain, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "glimpse_ros.replay", *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


def replay_held(h: Hostile, domain: int) -> tuple[bool, str]:
    """Replay ``h`` at 200 fps with nobody listening; (held, what happened)."""
    code, text = replay_process([str(h.path), "--fps", "200"], domain)
    want = 0 if h.good else 2
    ok = (code == want and "Traceback" not in text
          and (not h.good or f"published {h.good} frames" in text)
          and expected_summary(h) in text)
    return ok, f"exit {code}: {text.strip().splitlines()[-1][:200] if text.strip() else ''}"


def _tally(results: dict[str, tuple[bool, str]]) -> dict[str, Any]:
    failed = {k: why for k, (ok, why) in results.items() if not ok}
    return {"tried": len(results), "held": len(results) - len(failed), "failed": failed}


def hostile_inputs(tmp: Path, domain: int) -> dict[str, Any]:
    """Hostile bags (both storages), folders and an oversized video through both tools."""
    bags = {h.path.name: h for storage in ("sqlite3", "mcap")
            for h in hostile_bags(tmp / f"bags_{storage}", storage).values()}
    folders = hostile_folders(tmp / "folders")
    payload = {k: h for k, h in bags.items() if not h.fps or k.endswith("mixed")}
    rates = {k: h for k, h in bags.items() if k not in payload}
    out: dict[str, Any] = {}
    for name, group in (("bag_payloads", payload), ("bag_rates", rates),
                        ("image_folders", folders)):
        out[f"annotate_{name}"] = _tally({k: annotate_held(h, tmp / "out" / name / k)
                                          for k, h in group.items()})
        out[f"replay_{name}"] = _tally({k: replay_held(h, domain) for k, h in group.items()})
    video = oversized_video(tmp)
    bound: dict[str, tuple[bool, str]] = {}
    stdout, stderr = io.StringIO(), io.StringIO()
    from glimpse_ros.tools.annotate import main

    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main([str(video.path), "--out", str(tmp / "out" / "video"), "--no-progress"])
    bound["annotate_video_4200"] = (code == 2 and "over the limit" in stderr.getvalue(),
                                    stderr.getvalue().strip()[:200])
    code, text = replay_process([str(video.path)], domain)
    bound["replay_video_4200"] = (code == 2 and "over the limit" in text
                                  and "Traceback" not in text, text.strip()[-200:])
    for key in ("only_huge_png", "only_huge_bmp"):
        bound[f"annotate_{key}"] = annotate_held(folders[key], tmp / "out" / "bound" / key)
        bound[f"replay_{key}"] = replay_held(folders[key], domain)
    out["pixel_bound"] = _tally(bound)
    return out


def replay_arguments(tmp: Path, domain: int) -> dict[str, Any]:
    """Out-of-range replay arguments: exit 2 naming the argument, no traceback."""
    video = tmp / "ok.avi"
    import cv2
    import numpy as np

    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (32, 24))
    writer.write(np.zeros((24, 32, 3), np.uint8))
    writer.release()
    results = {}
    for args in BAD_REPLAY_ARGS:
        code, text = replay_process([str(video), *args], domain)
        named = args[0] if "100000" not in args else "--max-frame-pixels"
        results[" ".join(args)] = (code == 2 and named in text and "Traceback" not in text,
                                   text.strip().splitlines()[-1][:200] if text.strip() else "")
    return _tally(results)


def sigterm_during_imports(domain: int, repeats: int = 2) -> dict[str, Any]:
    """SIGTERM once the recognizer process has mapped each of :data:`SIGTERM_AT`: exit 0."""
    results = {}
    for library in SIGTERM_AT:
        for i in range(repeats):
            env = local_env(domain, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
            proc = subprocess.Popen([sys.executable, "-m", "glimpse_ros.recognizer"], cwd=REPO,
                                    env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True)
            start = time.monotonic()
            while proc.poll() is None and time.monotonic() - start < 60:
                try:
                    if library in Path(f"/proc/{proc.pid}/maps").read_text():
                        break
                except OSError:
                    break
                time.sleep(0.002)
            at = time.monotonic() - start
            proc.send_signal(signal.SIGTERM)
            try:
                out, _ = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
            results[f"{library}#{i}"] = (proc.returncode == 0 and "Traceback" not in out,
                                         f"exit {proc.returncode} after {at:.2f} s")
    return _tally(results)


REJECTED_STREAMS = [  # (what, encoding, width, height, step, data bytes, max_frame_pixels, reason)
    ("32FC1", "32FC1", 6, 4, 24, 96, 4096 * 4096, "encoding"),
    ("max_frame_pixels=1", "rgb8", 6, 4, 18, 72, 1, "too_large"),
    ("size mismatch", "rgb8", 6, 4, 18, 80, 4096 * 4096, "size_mismatch"),
    ("truncated", "bgr8", 6, 4, 18, 50, 4096 * 4096, "truncated"),
    ("yuv422 odd width", "yuv422", 5, 4, 10, 40, 4096 * 4096, "size_mismatch"),
    ("zero size", "mono8", 0, 0, 0, 0, 4096 * 4096, "zero_size"),
]


def rejection_diagnostics(seconds: float = 12.0, rate_hz: float = 30.0) -> dict[str, Any]:
    """Streams whose every frame is refused, through the node's input callback and statistics.

    Held: after ``seconds`` at ``rate_hz`` (a manual clock) the status is WARN naming the reason,
    not "stale", and every message was counted on arrival.
    """
    import numpy as np
    import rclpy.logging
    from sensor_msgs.msg import Image

    from glimpse_ros.config import NodeConfig
    from glimpse_ros.ros.diagnostics import NodeStats
    from glimpse_ros.ros.frame_input import FrameInput

    results = {}
    for what, enc, width, height, step, size, pixels, reason in REJECTED_STREAMS:
        now = [100.0]
        stats = NodeStats(clock=lambda: now[0])
        config = NodeConfig(max_frame_pixels=pixels)
        inp = FrameInput(stats, rclpy.logging.get_logger("reliability_rejections"),
                         lambda: config, "image")
        msg = Image(height=height, width=width, encoding=enc, step=step,
                    data=np.zeros(size, np.uint8).tobytes())
        n = int(seconds * rate_hz)
        for _ in range(n):
            now[0] += 1.0 / rate_hz
            inp.on_image(msg)
        status, snap = stats.status(), stats.snapshot()
        level = int.from_bytes(status.level, "little") if isinstance(status.level, bytes) \
            else int(status.level)
        results[what] = (level == 1 and f"rejected ({reason})" in status.message
                         and "stale" not in status.message and snap["messages_received"] == n,
                         status.message[:160])
    return _tally(results)


def offline_runs(tmp: Path, domain: int) -> dict[str, Any]:
    """Every offline class; each entry ``{"tried", "held", "failed"}``."""
    for sub in ("bags_sqlite3", "bags_mcap", "out"):
        (tmp / sub).mkdir(parents=True, exist_ok=True)
    out = hostile_inputs(tmp, domain)
    out["replay_arguments"] = replay_arguments(tmp, domain)
    out["sigterm_imports"] = sigterm_during_imports(domain)
    out["rejection_diagnostics"] = rejection_diagnostics()
    return out


def offline_rows(r: dict[str, Any]) -> list[tuple[str, str]]:
    """README table rows of :func:`offline_runs`."""
    def held(*keys: str) -> str:
        return (f"{sum(r[k]['held'] for k in keys)}/{sum(r[k]['tried'] for k in keys)} held")
    return [
        ("Hostile bags (annotate, replay)", f"non-CDR payloads (random bytes, another type's CDR, "
         f"empty, truncated, bad encapsulation, mixed), sqlite3 + mcap: "
         f"{held('annotate_bag_payloads', 'replay_bag_payloads')}; lying rates (one receive "
         f"time, 1 us stamps, no clock, message_count 10^9): "
         f"{held('annotate_bag_rates', 'replay_bag_rates')}"),
        ("Hostile image folders", f"corrupt, empty, truncated, text, 12000x12000 PNG and "
         f"30000x30000 BMP declarations, alone and among 18 good images: "
         f"{held('annotate_image_folders', 'replay_image_folders')} (every skipped file "
         f"counted under its reason; nothing usable: exit 2)"),
        ("Pixel bound (4096x4096)", f"4200x4200 video, PNG/BMP bombs: {held('pixel_bound')}"),
        ("Replay arguments", f"{held('replay_arguments')} (exit 2 naming the argument)"),
        ("SIGTERM during imports", f"{held('sigterm_imports')} (exit 0)"),
        ("Every frame rejected", f"{len(REJECTED_STREAMS)} streams of 12 s at 30 Hz (32FC1, "
         f"max_frame_pixels=1, size mismatch, truncated, odd-width yuv422, zero size): "
         f"{held('rejection_diagnostics')} (WARN naming the reason, not 'stale')"),
    ]


__all__ = ["offline_rows", "offline_runs"]
