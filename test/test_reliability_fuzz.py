"""The converter under 4000 fuzzed messages: only ImageConversionError, each under its reason."""

from __future__ import annotations

import collections

import pytest

pytest.importorskip("sensor_msgs")
from glimpse_ros.tools.reliability_fuzz import (COMPRESSED_MUTATIONS,  # noqa: E402
                                                RAW_MUTATIONS, FuzzGenerator)

RAW_REASONS = {"bad_encoding": {"encoding"}, "short_step": {"step"}, "truncated": {"truncated"},
               "oversized": {"size_mismatch"}, "zero_size": {"zero_size"},
               "huge_dims": {"too_large"}, "huge_step": {"truncated"},
               "odd_yuv": {"size_mismatch"}}
COMPRESSED_REASONS = {"bomb_header": {"too_large"}, "bad_format": {"format"},
                      "empty": {"zero_size"}, "garbage": {"corrupt"},
                      "truncated_jpeg": {"truncated", "corrupt"}, "png_garbage": {"corrupt"},
                      "truncated_png": {"corrupt"}, "jpeg_garbage": {"corrupt"}}


@pytest.mark.parametrize("compressed", [False, True])
def test_mutations_rejected_under_their_reason(compressed: bool) -> None:
    """Every raw mutation is rejected; each kind under the reason it targets."""
    gen = FuzzGenerator(7, compressed=compressed)
    cases = gen.sequence(2000)
    kinds = COMPRESSED_MUTATIONS if compressed else RAW_MUTATIONS
    assert {c.kind for c in cases} == set(kinds) | {"valid"}
    reasons = collections.defaultdict(set)
    for case in cases:
        reasons[case.kind].add(case.expected)
    assert reasons["valid"] == {None}
    for kind, allowed in (COMPRESSED_REASONS if compressed else RAW_REASONS).items():
        assert reasons[kind] <= allowed, (kind, reasons[kind])
    if not compressed:
        assert None not in set().union(*(v for k, v in reasons.items() if k != "valid"))


def test_valid_frames_decode_to_the_frame_size() -> None:
    """Valid raw frames of every encoding and padding, and valid JPEG/PNG, decode to W x H."""
    for compressed in (False, True):
        gen = FuzzGenerator(3, width=30, height=20, compressed=compressed)
        for _ in range(100):
            assert gen.outcome(gen.valid()) == (None, (20, 30, 3))
