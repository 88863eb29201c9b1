"""bench-node and reliability runs use the caller's ROS_DOMAIN_ID and localhost discovery."""

from __future__ import annotations

import pytest

from glimpse_ros.ros.discovery import domain_id, local_env


def test_domain_id_honours_the_environment_and_else_picks_in_range() -> None:
    """A set ROS_DOMAIN_ID is used as is; unset or empty gives a random id in the range."""
    assert domain_id(environ={"ROS_DOMAIN_ID": "7"}) == 7
    assert domain_id(101, 200, environ={"ROS_DOMAIN_ID": "0"}) == 0
    picks = {domain_id(150, 152, environ={}) for _ in range(200)}
    assert picks == {150, 151, 152}
    assert 1 <= domain_id(environ={"ROS_DOMAIN_ID": " "}) <= 100


@pytest.mark.parametrize("bad", ["abc", "-1", "233", "1.5"])
def test_invalid_domain_id_is_refused_with_the_variable_name(bad: str) -> None:
    """An id no RMW accepts: ValueError naming ROS_DOMAIN_ID and 0..232."""
    with pytest.raises(ValueError, match=r"ROS_DOMAIN_ID must be an integer in 0\.\.232"):
        domain_id(environ={"ROS_DOMAIN_ID": bad})


def test_child_environment_is_local_and_keeps_the_rest() -> None:
    """The child gets the domain, the LOCALHOST range, no deprecated variable, the rest kept."""
    env = local_env(42, environ={"PATH": "/bin", "ROS_LOCALHOST_ONLY": "1",
                                 "ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET"}, OMP_NUM_THREADS="1")
    assert env == {"PATH": "/bin", "ROS_DOMAIN_ID": "42", "OMP_NUM_THREADS": "1",
                   "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}


def test_bench_and_reliability_processes_use_the_callers_domain(monkeypatch) -> None:
    """The node environments of bench-node and the reliability harness follow ROS_DOMAIN_ID."""
    pytest.importorskip("rclpy")
    from glimpse_ros.bench.node_run import scenario_env
    from glimpse_ros.tools.reliability import run_domain

    monkeypatch.setenv("ROS_DOMAIN_ID", "77")
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "SUBNET")
    domain, env = scenario_env()
    assert domain == 77 and env["ROS_DOMAIN_ID"] == "77"
    assert env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    assert run_domain() == 77
    import os

    assert os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"  # this process's nodes
