"""Preprocessing cost per camera frame: the two-pass ``preprocess_frame`` vs the plain path.

The plain path is the composition training's dataset uses, ``normalize(resize_square(...))``
of the centre crop: a full resize to the square, then float arithmetic over the crop. Both run
round robin on the same random frames (one per size), single call at a time, so their ratio is
taken under the same machine load. Part of ``make bench`` (``preprocess`` in bench.json).
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from glimpse_ros.preprocess import crop_offset, normalize, preprocess_frame, resize_square

SIZES = ((480, 640), (720, 1280), (1080, 1920))


def plain_preprocess(rgb: np.ndarray, resize: int, crop: int) -> np.ndarray:
    """Full resize, centre crop, float normalisation: ``(H, W, 3)`` -> ``(3, crop, crop)``."""
    o = crop_offset(resize, crop)
    return normalize(resize_square(rgb, resize)[o:o + crop, o:o + crop])


def bench_preprocess(resize: int = 256, crop: int = 224, runs: int = 200,
                     sizes: tuple[tuple[int, int], ...] = SIZES) -> dict:
    """Median / min ms per frame of both paths for each source size ``(H, W)``.

    Returns:
        ``{"<W>x<H>": {"fast_ms", "fast_min_ms", "plain_ms", "plain_min_ms", "speedup",
        "max_abs_diff"}}``, plus ``resize``/``crop``.
    """
    rng = np.random.default_rng(0)
    report: dict = {"resize": resize, "crop": crop, "runs": runs}
    out = np.empty((3, crop, crop), dtype=np.float32)
    for h, w in sizes:
        frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        fast = lambda: preprocess_frame(frame, resize, crop, out=out)  # noqa: E731
        plain = lambda: plain_preprocess(frame, resize, crop)  # noqa: E731
        times: dict[str, list[float]] = {"fast": [], "plain": []}
        for fn in (fast, plain):
            fn()  # warm-up
        for _ in range(runs):
            for name, fn in (("fast", fast), ("plain", plain)):
                start = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - start) * 1e3)
        entry = {f"{n}_ms": statistics.median(t) for n, t in times.items()}
        entry.update({f"{n}_min_ms": min(t) for n, t in times.items()})
        entry["speedup"] = entry["plain_ms"] / entry["fast_ms"]
        entry["max_abs_diff"] = float(np.abs(fast() - plain()).max())
        report[f"{w}x{h}"] = entry
    return report


def format_preprocess(p: dict) -> list[str]:
    """Table lines of :func:`bench_preprocess`."""
    lines = [f"preprocess to {p['crop']}^2 (resize {p['resize']}), ms per frame, median (min), "
             f"{p['runs']} runs round robin:"]
    for key, e in p.items():
        if isinstance(e, dict):
            lines.append(f"  {key:<10} two-pass {e['fast_ms']:5.2f} ({e['fast_min_ms']:4.2f})  "
                         f"plain {e['plain_ms']:5.2f} ({e['plain_min_ms']:4.2f})  "
                         f"{e['speedup']:4.2f}x  max |diff| {e['max_abs_diff']:.1e}")
    return lines


def main() -> None:
    """Print the table (``python -m glimpse_ros.bench.preprocess``)."""
    print("\n".join(format_preprocess(bench_preprocess())))


__all__ = ["SIZES", "bench_preprocess", "format_preprocess", "plain_preprocess"]


if __name__ == "__main__":
    main()
