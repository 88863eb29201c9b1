"""argparse ``type=`` functions for bounded numbers, shared by the command-line tools.

A value outside its range makes argparse exit with status 2 and one line naming the argument and
the range, e.g. ``replay: error: argument --fps: must be a finite number > 0, got nan``.
"""

from __future__ import annotations

import argparse
import math
from typing import Callable


def bounded_int(low: int, high: int | None = None) -> Callable[[str], int]:
    """An integer in ``[low, high]`` (``high`` None: no upper bound)."""
    what = f">= {low}" if high is None else f"in {low}..{high}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer {what}, got {text!r}")
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be an integer {what}, got {value}")
        return value
    return parse


def bounded_float(low: float, high: float = math.inf, low_open: bool = False,
                  high_open: bool = False) -> Callable[[str], float]:
    """A finite float between ``low`` and ``high`` (``*_open``: that end excluded)."""
    parts = [f"{'>' if low_open else '>='} {low:g}"] if low > -math.inf else []
    if high < math.inf:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    what = "a finite number " + " and ".join(parts)

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        below = value <= low if low_open else value < low
        above = value >= high if high_open else value > high
        if not math.isfinite(value) or below or above:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
        return value
    return parse


def add_max_frame_pixels(ap: argparse.ArgumentParser, default: int) -> None:
    """``--max-frame-pixels``: the frame-size bound of every source (as the node's)."""
    ap.add_argument("--max-frame-pixels", type=bounded_int(1), default=default,
                    help="frames with more pixels are skipped and counted, a video of such "
                    "frames is refused (default %(default)s = 4096x4096, the node's "
                    "max_frame_pixels)")


__all__ = ["add_max_frame_pixels", "bounded_float", "bounded_int"]
