"""Static checks of the launch file, params file and RViz config (launch is not installable here).

The launch file is parsed with ``ast`` (not imported): its launch arguments, the files it refers
to, the executable and the parameter names it sets are checked against the package.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest
import yaml

from glimpse_ros.config import NodeConfig, RecognizerConfig, load_dataclass

REPO = Path(__file__).resolve().parents[1]
LAUNCH = REPO / "launch" / "recognizer.launch.py"
PARAMS = REPO / "config" / "recognizer.yaml"
RVIZ = REPO / "config" / "recognizer.rviz"
FIELDS = {cls: [f.name for f in dataclasses.fields(cls)] for cls in (RecognizerConfig, NodeConfig)}
PARAMETERS = set(FIELDS[RecognizerConfig]) | set(FIELDS[NodeConfig])


def launch_tree() -> ast.Module:
    """Parsed launch file."""
    return ast.parse(LAUNCH.read_text(), filename=str(LAUNCH))


def calls(tree: ast.AST, name: str) -> list[ast.Call]:
    """All calls of a function/class called ``name``."""
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)
            and getattr(n.func, "id", getattr(n.func, "attr", None)) == name]


def keywords(call: ast.Call) -> dict[str, ast.AST]:
    """Keyword arguments of a call."""
    return {k.arg: k.value for k in call.keywords}


def test_launch_overrides_default_to_the_params_file() -> None:
    """Launch arguments that override parameters are empty by default (params file wins)."""
    tree = launch_tree()
    table = next(n for n in tree.body if isinstance(n, ast.Assign)
                 and getattr(n.targets[0], "id", "") == "ARGUMENTS")
    defaults = {elt.elts[0].value: elt.elts[1].value for elt in table.value.elts}
    assert defaults["model"] == defaults["backend"] == defaults["image_topic"] == ""
    table = next(n for n in tree.body if isinstance(n, ast.Assign)
                 and getattr(n.targets[0], "id", "") == "OVERRIDES")
    overrides = {elt.elts[0].value for elt in table.value.elts}
    assert overrides and overrides <= set(defaults), overrides - set(defaults)


def test_launch_file_parses_and_declares_the_arguments() -> None:
    """The launch file declares model, backend, image topic, namespace, use_sim_time, rviz."""
    tree = launch_tree()
    assert any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description"
               for n in tree.body)
    table = next(n for n in tree.body if isinstance(n, ast.Assign)
                 and getattr(n.targets[0], "id", "") == "ARGUMENTS")
    declared = {elt.elts[0].value for elt in table.value.elts}
    assert {"model", "backend", "image_topic", "namespace", "use_sim_time", "rviz",
            "params_file"} <= declared
    used = {c.args[0].value for c in calls(tree, "LaunchConfiguration")
            if isinstance(c.args[0], ast.Constant)}  # the others: the OVERRIDES table below
    assert used <= declared, f"undeclared launch arguments used: {used - declared}"
    assert calls(tree, "DeclareLaunchArgument")


def test_launch_node_executable_files_and_parameters_exist() -> None:
    """Node executable is a console script, referenced config files exist, parameters match."""
    tree = launch_tree()
    nodes = {keywords(c)["executable"].value: c for c in calls(tree, "Node")}
    assert set(nodes) == {"recognizer", "rviz2"}
    recognizer = keywords(nodes["recognizer"])
    assert recognizer["package"].value == "glimpse_ros"
    setup = (REPO / "setup.py").read_text()
    assert "recognizer = glimpse_ros.recognizer:main" in setup
    for join in calls(tree, "PathJoinSubstitution"):
        parts = [e.value for e in join.args[0].elts if isinstance(e, ast.Constant)]
        assert (REPO.joinpath(*parts)).is_file(), f"launch refers to missing {parts}"
    dicts = [d for d in ast.walk(recognizer["parameters"]) if isinstance(d, ast.Dict)]
    names = {k.value for d in dicts for k in d.keys}
    assert names and names <= PARAMETERS | {"use_sim_time"}, names - PARAMETERS
    # launch arguments that override parameters: declared, and naming real parameters
    table = next(n for n in tree.body if isinstance(n, ast.Assign)
                 and getattr(n.targets[0], "id", "") == "OVERRIDES")
    overrides = {elt.elts[0].value: elt.elts[1].value for elt in table.value.elts}
    assert {"model", "backend", "image_topic"} <= set(overrides)
    assert set(overrides.values()) <= PARAMETERS, set(overrides.values()) - PARAMETERS
    assert (REPO / "glimpse_ros" / "recognizer.py").is_file()


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
