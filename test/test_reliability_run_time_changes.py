"""Reliability classes of run-time changes over DDS: lifecycle cycles, integers for doubles.

Short versions of ``python -m glimpse_ros.tools.reliability --only lifecycle parameters``: each
starts its own node process on a private domain and drives it from this process.
"""

from __future__ import annotations

import random

import pytest

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("torch")
from glimpse_ros.ros.parameters import field_types  # noqa: E402
from glimpse_ros.tools.reliability_lifecycle import lifecycle_runs  # noqa: E402
from glimpse_ros.tools.reliability_parameters import integer_values, parameter_runs  # noqa: E402

DOMAIN = random.randint(101, 200)  # the node e2e tests use 1..100
CYCLES = 3


def test_integer_values_cover_both_ends_the_middle_and_beyond() -> None:
    """Hand-computed batches for three descriptor ranges."""
    assert integer_values(0.1, 3600.0) == [0, 1, 1800, 3600, 3601]
    assert integer_values(0.0, 0.99) == [-1, 0, 1]
    assert integer_values(0.01, 60.0) == [0, 1, 30, 60, 61]


def test_lifecycle_cycles_count_no_middleware_loss(tmp_path) -> None:
    """3 deactivate/activate cycles at 30 fps: frames unseen while inactive are not 'skipped'."""
    c = lifecycle_runs(tmp_path, DOMAIN, cycles=CYCLES)["lifecycle_cycles"]
    assert c["node_alive"] and c["final_state"] == "active"
    # the case was exercised: each cycle published frames while nobody subscribed
    assert all(x["published_while_unsubscribed"] >= 5 for x in c["per_cycle"]), c["per_cycle"]
    assert c["cycles_held"] == CYCLES, c["per_cycle"]
    assert c["skipped_by_middleware"] == 0 and c["lost_in_transport"] == 0, c
    # what the node received is what was published while it was subscribed (reliable input),
    # but for a frame at each edge of a subscription that the two sides saw differently
    assert abs(c["messages_received"] - c["published_while_subscribed"]) <= 2 * CYCLES + 2, c


def test_integers_for_every_double_parameter(tmp_path) -> None:
    """Every double parameter: in-range integers accepted as floats, others refused in words."""
    p = parameter_runs(tmp_path, DOMAIN)["integer_doubles"]
    assert p["node_alive"]
    doubles = {name for name, kind in field_types().items() if kind is float}
    assert set(p["parameters"]) == doubles
    assert p["held"] == p["tried"], p["not_held"]
    assert p["type_errors"] == 0
    assert p["tried"] >= 3 * len(doubles) and p["accepted"] >= len(doubles) - 1
    assert p["observed_in_use"] == 3  # marker_lifetime_s 0, 1800, 3600 seen on the markers
    accepted = {(r["parameter"], r["value"]) for r in p["results"] if r["accepted"]}
    assert ("max_gap_s", 1) in accepted and ("smoothing", 0) in accepted
    assert ("smoothing", 1) not in accepted
    assert not any(name == "diagnostics_period_s" for name, _ in accepted)  # read-only
