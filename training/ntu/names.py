"""NTU RGB+D sample names ``SsssCcccPpppRrrrAaaa``: setup, camera, subject, repetition, action."""

from __future__ import annotations

import re
from dataclasses import dataclass

_NAME = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")


@dataclass(frozen=True)
class SampleName:
    """Fields of an NTU sample name; ``label`` is the 0-based class index (A - 1)."""

    setup: int
    camera: int
    subject: int
    replication: int
    action: int

    @property
    def label(self) -> int:
        """0-based class index."""
        return self.action - 1

    @property
    def stem(self) -> str:
        """The sample name without suffix, e.g. ``S001C002P003R001A010``."""
        return (f"S{self.setup:03d}C{self.camera:03d}P{self.subject:03d}"
                f"R{self.replication:03d}A{self.action:03d}")

    @property
    def video_name(self) -> str:
        """RGB video file name as distributed."""
        return f"{self.stem}_rgb.avi"

    @property
    def skeleton_name(self) -> str:
        """Skeleton file name as distributed."""
        return f"{self.stem}.skeleton"


def parse_name(name: str) -> SampleName:
    """Parse a file name or stem (``S001C002P003R001A010_rgb.avi``) into its fields.

    Raises:
        ValueError: if the name does not follow the NTU pattern.
    """
    m = _NAME.search(name)
    if m is None:
        raise ValueError(f"not an NTU sample name: {name!r}")
    s, c, p, r, a = (int(v) for v in m.groups())
    return SampleName(setup=s, camera=c, subject=p, replication=r, action=a)
