"""Integers for every floating-point parameter, set at run time (``--only parameters``).

``ros2 param set /recognizer max_gap_s 2`` sends an INTEGER parameter value; rclpy used to refuse
it with "Wrong parameter type, expected '3' got '2'". Here every parameter the running node
declares as a double (found over DDS with list/describe_parameters) gets a batch of integer
values through its ``set_parameters`` service while a camera streams: the lowest and highest
integer of its descriptor range, one between, and one beyond each end.

The expectation comes from the descriptor alone: a value in range of a live parameter is
accepted and ``get_parameters`` then returns the DOUBLE ``float(value)``; a value out of range,
or any value for a read-only parameter, is refused with a reason that is not rclpy's type error,
and ``get`` still returns the old value. ``marker_lifetime_s`` is also observed in use: the node's
next ``~/glimpses`` markers carry the new lifetime. After each value the parameter is set back to
its original double, so the config's cross-field rules (stamp_jitter_s <= max_gap_s, ...) judge
each value against the defaults.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import DescribeParameters, GetParameters, ListParameters, SetParameters
from visualization_msgs.msg import MarkerArray

from glimpse_ros.ros.service_client import matched_client
from glimpse_ros.tools.reliability_harness import NodeProcess, Probe, run_on_tiny_node
from glimpse_ros.tools.reliability_lifecycle import Camera

TOPIC = "params/image"
OBSERVED = "marker_lifetime_s"  # seen in use: the lifetime of the published markers
TYPE_ERROR = "Wrong parameter type"


def integer_values(low: float, high: float) -> list[int]:
    """Integers to try for the range [low, high]: both ends, the middle, one beyond each end."""
    lo, hi = math.ceil(low), math.floor(high)
    return sorted({lo, hi, (lo + hi) // 2, hi + 1, lo - 1})


class ParameterClient:
    """list/describe/get/set_parameters of node ``name`` from ``probe``'s node."""

    def __init__(self, probe: Probe, name: str, timeout: float = 90.0) -> None:
        """Clients whose response paths are matched (side-effect-free probes)."""
        def client(srv, service, request):
            return matched_client(probe.node, srv, f"/{name}/{service}", request, timeout)

        self.list = client(ListParameters, "list_parameters", ListParameters.Request())
        self.describe = client(DescribeParameters, "describe_parameters",
                               DescribeParameters.Request())
        self.get = client(GetParameters, "get_parameters", GetParameters.Request())
        self.set = client(SetParameters, "set_parameters", SetParameters.Request())

    def doubles(self) -> list[Any]:
        """Descriptors of every DOUBLE parameter the node declares."""
        names = list(self.list.call(ListParameters.Request(), timeout_sec=10).result.names)
        descs = self.describe.call(DescribeParameters.Request(names=names),
                                   timeout_sec=10).descriptors
        return [d for d in descs if d.type == ParameterType.PARAMETER_DOUBLE]

    def value(self, name: str) -> ParameterValue:
        """The parameter's current value message."""
        return self.get.call(GetParameters.Request(names=[name]), timeout_sec=10).values[0]

    def put(self, name: str, value: ParameterValue) -> Any:
        """Set one parameter; its SetParametersResult."""
        request = SetParameters.Request(parameters=[Parameter(name=name, value=value)])
        return self.set.call(request, timeout_sec=10).results[0]


def _marker_lifetime(markers: list[MarkerArray], after: int) -> float | None:
    """Lifetime (s) of the newest marker received after index ``after``, if any."""
    for array in reversed(markers[after:]):
        if array.markers:
            life = array.markers[0].lifetime
            return life.sec + life.nanosec * 1e-9
    return None


def try_value(params: ParameterClient, desc: Any, value: int, markers: list[MarkerArray],
              probe: Probe) -> dict[str, Any]:
    """Set ``desc.name`` to the integer ``value``; what happened, and whether it held."""
    name = desc.name
    ranges = list(desc.floating_point_range)
    in_range = all(r.from_value <= value <= r.to_value for r in ranges)
    expect = in_range and not desc.read_only
    before = params.value(name)
    seen = len(markers)
    result = params.put(name, ParameterValue(type=ParameterType.PARAMETER_INTEGER,
                                             integer_value=value))
    got = params.value(name)
    out: dict[str, Any] = {"parameter": name, "value": value, "expected_accepted": expect,
                           "accepted": bool(result.successful), "reason": result.reason,
                           "get_type": int(got.type), "get_value": got.double_value}
    if result.successful:
        held = got.type == ParameterType.PARAMETER_DOUBLE and got.double_value == float(value)
        if name == OBSERVED:
            try:
                probe.wait_for(lambda: _marker_lifetime(markers, seen) == float(value), 10,
                               f"markers with lifetime {value} s")
                out["observed_in_use"] = True
            except TimeoutError:
                out["observed_in_use"] = False
            held = held and out["observed_in_use"]
        params.put(name, before)  # back to the original double
    else:
        held = (bool(result.reason) and TYPE_ERROR not in result.reason
                and got.type == before.type and got.double_value == before.double_value)
    out["held"] = bool(held and out["accepted"] == expect)
    return out


def run_integer_doubles(probe: Probe, node: NodeProcess) -> dict[str, Any]:
    """Every double parameter, :func:`integer_values` of its range, while a camera streams."""
    params = ParameterClient(probe, node.name)
    markers: list[MarkerArray] = []
    sub = probe.node.create_subscription(MarkerArray, f"/{node.name}/glimpses", markers.append,
                                         50)
    camera = Camera(probe, fps=20.0)
    try:
        probe.wait_for(lambda: bool(markers), 60, "glimpse markers")
        doubles = params.doubles()
        results = []
        for desc in doubles:
            ranges = list(desc.floating_point_range)
            low, high = (ranges[0].from_value, ranges[0].to_value) if ranges else (-1.0, 1.0)
            results += [try_value(params, desc, v, markers, probe)
                        for v in integer_values(low, high)]
    finally:
        camera.stop()
        probe.node.destroy_subscription(sub)
    return {"parameters": [d.name for d in doubles],
            "read_only": [d.name for d in doubles if d.read_only],
            "tried": len(results), "held": sum(r["held"] for r in results),
            "accepted": sum(r["accepted"] for r in results),
            "refused": sum(not r["accepted"] for r in results),
            "type_errors": sum(TYPE_ERROR in r["reason"] for r in results),
            "observed_in_use": sum(bool(r.get("observed_in_use")) for r in results),
            "not_held": [r for r in results if not r["held"]], "results": results,
            "node_alive": node.alive()}


def parameter_runs(tmp: Path, domain: int) -> dict[str, Any]:
    """Start a node process on a small random model and run :func:`run_integer_doubles`."""
    return {"integer_doubles": run_on_tiny_node(tmp, domain, "int_params",
                                                {"diagnostics_period_s": 0.2}, TOPIC,
                                                run_integer_doubles)}


def parameter_rows(r: dict[str, Any]) -> list[tuple[str, str]]:
    """The table row of the run-time integer class."""
    p = r["integer_doubles"]
    return [("Integers for double parameters",
             f"{p['tried']} integer values over set_parameters for the {len(p['parameters'])} "
             f"double parameters ({len(p['read_only'])} read-only) while streaming: "
             f"{p['held']}/{p['tried']} held ({p['accepted']} accepted, get = the float; "
             f"{p['refused']} refused as out of range or read-only; {p['type_errors']} type "
             f"errors; {OBSERVED} seen in the markers {p['observed_in_use']} times)")]


__all__ = ["ParameterClient", "integer_values", "parameter_rows", "parameter_runs",
           "run_integer_doubles", "try_value"]
