"""Checks of the launch file, params file and RViz config without the launch libraries.

``launch``/``launch_ros`` are not installable here: the launch file is executed against small
recording stand-ins of the classes it uses (a launch argument's value is looked up in a dict), with
a throw-away ament index, so its own logic runs: which nodes it starts with which parameters, and
that a missing rviz2 stops it before the recognizer is started.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import sys
import types
from pathlib import Path

import pytest
import yaml

from glimpse_ros.config import NodeConfig, RecognizerConfig
from glimpse_ros.config_loader import load_dataclass

REPO = Path(__file__).resolve().parents[1]
LAUNCH = REPO / "launch" / "recognizer.launch.py"
PARAMS = REPO / "config" / "recognizer.yaml"
RVIZ = REPO / "config" / "recognizer.rviz"
FIELDS = {cls: [f.name for f in dataclasses.fields(cls)] for cls in (RecognizerConfig, NodeConfig)}
PARAMETERS = set(FIELDS[RecognizerConfig]) | set(FIELDS[NodeConfig])


class Recorded:
    """Stand-in for a launch class: keeps its arguments; instances are logged in ``made``."""

    made: list["Recorded"] = []

    def __init__(self, *args, **kwargs) -> None:
        self.args, self.kwargs = args, kwargs
        Recorded.made.append(self)


def stub(name: str) -> type:
    """A Recorded subclass called ``name``."""
    return type(name, (Recorded,), {})


class LaunchConfiguration(Recorded):
    """Resolves to ``context.values[name]``."""

    def perform(self, context) -> str:
        return context.values[self.args[0]]


@pytest.fixture
def launch_file(monkeypatch, tmp_path):
    """Import the launch file against stand-ins; returns (module, ament prefix)."""
    modules = {
        "launch": {"LaunchDescription": stub("LaunchDescription")},
        "launch.actions": {n: stub(n) for n in
                           ("DeclareLaunchArgument", "OpaqueFunction", "Shutdown")},
        "launch.substitutions": {"LaunchConfiguration": LaunchConfiguration},
        "launch_ros.actions": {"Node": stub("Node"), "LifecycleNode": stub("LifecycleNode")},
        "launch_ros.parameter_descriptions": {"ParameterValue": stub("ParameterValue")},
    }
    for name, attrs in modules.items():
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setitem(sys.modules, "launch_ros", types.ModuleType("launch_ros"))
    prefix = tmp_path / "install"
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(prefix))
    register(prefix, "glimpse_ros")
    Recorded.made = []
    spec = importlib.util.spec_from_file_location("recognizer_launch", LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, prefix


def register(prefix: Path, package: str) -> None:
    """Make ``package`` known to ament_index_python under ``prefix``."""
    index = prefix / "share" / "ament_index" / "resource_index" / "packages"
    index.mkdir(parents=True, exist_ok=True)
    (index / package).write_text("")
    (prefix / "share" / package).mkdir(parents=True, exist_ok=True)


def run_launch(module, **arguments) -> list:
    """Run generate_launch_description() with some arguments set; return what it starts."""
    description = module.generate_launch_description()
    entities = description.args[0]
    defaults = {e.args[0]: e.kwargs["default_value"] for e in entities
                if type(e).__name__ == "DeclareLaunchArgument"}
    unknown = set(arguments) - set(defaults)
    assert not unknown, f"undeclared launch arguments {unknown}"
    (opaque,) = [e for e in entities if type(e).__name__ == "OpaqueFunction"]
    context = types.SimpleNamespace(values=dict(defaults, **arguments))
    return opaque.kwargs["function"](context)


def test_defaults_start_the_recognizer_with_the_packaged_params_file(launch_file) -> None:
    """Empty params_file = config/recognizer.yaml of the package; no overrides; not managed."""
    module, prefix = launch_file
    (node,) = run_launch(module)
    assert type(node).__name__ == "Node"
    kw = node.kwargs
    assert (kw["package"], kw["executable"], kw["name"], kw["namespace"]) == (
        "glimpse_ros", "recognizer", "recognizer", "")
    params_file, fixed, overrides = kw["parameters"]
    assert params_file == str(prefix / "share" / "glimpse_ros" / "config" / "recognizer.yaml")
    assert fixed == {"use_sim_time": False, "managed": False}
    assert overrides == {}
    assert set(fixed) <= PARAMETERS | {"use_sim_time"}
    setup_py = (REPO / "setup.py").read_text()  # the executable a colcon build installs
    assert '"recognizer": "glimpse_ros.recognizer:main"' in setup_py
    assert re.search(r'AMENT_EXECUTABLES = \([^)]*"recognizer"', setup_py)


def test_arguments_reach_the_node(launch_file) -> None:
    """params_file, overrides (only when given), name, namespace, use_sim_time, managed."""
    module, _ = launch_file
    (node,) = run_launch(module, params_file="/tmp/mine.yaml", model="/m.safetensors",
                         image_topic="/cam1/image_raw", node_name="left", namespace="arm",
                         use_sim_time="true", managed="true")
    assert type(node).__name__ == "LifecycleNode"
    kw = node.kwargs
    assert (kw["name"], kw["namespace"]) == ("left", "arm")
    params_file, fixed, overrides = kw["parameters"]
    assert params_file == "/tmp/mine.yaml"
    assert fixed == {"use_sim_time": True, "managed": True}
    assert {k: v.args[0] for k, v in overrides.items()} == {
        "model_path": "/m.safetensors", "image_topic": "/cam1/image_raw"}
    assert set(overrides) <= PARAMETERS


def test_rviz_missing_fails_before_the_recognizer_starts(launch_file) -> None:
    """rviz:=true without rviz2: an error naming rviz2 and no node constructed at all."""
    module, _ = launch_file
    with pytest.raises(RuntimeError, match="rviz2"):
        run_launch(module, rviz="true")
    assert not [r for r in Recorded.made if type(r).__name__ in ("Node", "LifecycleNode")]


def test_rviz_present_starts_it_with_the_shipped_config_and_ends_the_launch(launch_file) -> None:
    """With rviz2: recognizer + rviz2 -d <share>/config/recognizer.rviz; closing RViz ends all."""
    module, prefix = launch_file
    register(prefix, "rviz2")
    recognizer, rviz = run_launch(module, rviz="true")
    assert recognizer.kwargs["package"] == "glimpse_ros"
    assert rviz.kwargs["arguments"] == [
        "-d", str(prefix / "share" / "glimpse_ros" / "config" / "recognizer.rviz")]
    assert type(rviz.kwargs["on_exit"]).__name__ == "Shutdown"
    assert (REPO / "config" / "recognizer.rviz").is_file()


def params_section() -> dict:
    """The ros__parameters mapping of config/recognizer.yaml."""
    data = yaml.safe_load(PARAMS.read_text())
    assert list(data) == ["/**"]
    return data["/**"]["ros__parameters"]


def test_params_yaml_matches_the_dataclasses() -> None:
    """Every dataclass field appears in the YAML, nothing else, and the values load strictly."""
    params = params_section()
    assert set(params) == PARAMETERS
    for cls, names in FIELDS.items():
        config = load_dataclass(cls, {n: params[n] for n in names})
        # the shipped file is the defaults
        assert config == cls()


@pytest.mark.parametrize("key,value", [("stride", 0), ("backend", "cuda"), ("queue_size", "2")])
def test_bad_params_values_are_rejected_by_name(key: str, value: object) -> None:
    """A wrong value in the YAML fails with the key named (what the node does at start-up)."""
    params = dict(params_section(), **{key: value})
    cls = RecognizerConfig if key in FIELDS[RecognizerConfig] else NodeConfig
    with pytest.raises(ValueError, match=key):
        load_dataclass(cls, {n: params[n] for n in FIELDS[cls]})


def test_rviz_config_shows_overlay_and_glimpses() -> None:
    """The RViz config shows the overlay (Image) and the glimpses (MarkerArray)."""
    manager = yaml.safe_load(RVIZ.read_text())["Visualization Manager"]
    topics = {d["Class"]: d["Topic"]["Value"] for d in manager["Displays"]}
    assert topics["rviz_default_plugins/Image"] == "/recognizer/overlay"
    assert topics["rviz_default_plugins/MarkerArray"] == "/recognizer/glimpses"
    assert manager["Global Options"]["Fixed Frame"] == NodeConfig().image_plane_frame_id
