"""The offline reliability classes: their hostile inputs and the rejection-diagnostics class."""

from __future__ import annotations

import pytest

pytest.importorskip("rclpy")
pytest.importorskip("rosbags")
from glimpse_ros.sources import open_source  # noqa: E402
from glimpse_ros.tools.reliability_inputs import hostile_bags, hostile_folders  # noqa: E402
from glimpse_ros.tools.reliability_offline import (expected_summary, offline_rows,  # noqa: E402
                                                   rejection_diagnostics)


def test_hostile_inputs_hold_in_the_sources(tmp_path) -> None:
    """Every hostile bag and folder yields its usable frames, skipped counts and rate."""
    (tmp_path / "b").mkdir()
    for name, h in {**hostile_bags(tmp_path / "b", "mcap"),
                    **hostile_folders(tmp_path / "f")}.items():
        source = open_source(h.path)
        assert len(list(source.items())) == h.good, name
        assert source.rejections.summary() == expected_summary(h), name
        if h.fps is not None:
            assert source.fps == pytest.approx(h.fps, rel=1e-6), name


def test_rejected_streams_warn_with_the_reason() -> None:
    """Six streams whose every frame is refused: all held; the table row says so."""
    result = rejection_diagnostics(seconds=6.0)
    assert result == {"tried": 6, "held": 6, "failed": {}}
    empty = {"tried": 1, "held": 1, "failed": {}}
    report = {k: empty for k in ("annotate_bag_payloads", "replay_bag_payloads",
                                 "annotate_bag_rates", "replay_bag_rates",
                                 "annotate_image_folders", "replay_image_folders",
                                 "pixel_bound", "replay_arguments", "sigterm_imports")}
    rows = dict(offline_rows({**report, "rejection_diagnostics": result}))
    assert "6/6 held" in rows["Every frame rejected"]
