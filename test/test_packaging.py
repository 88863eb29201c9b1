"""Packaging: what a pip wheel and a colcon (ament_python) install contain; package.xml keys."""

from __future__ import annotations

import ast
import configparser
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

from runtime_venv import source_copy

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "glimpse_ros"

# ROS packages (resolved by rosdep from the distribution) the package may depend on.
ROS_PACKAGES = {"rclpy", "rcl_interfaces", "builtin_interfaces", "lifecycle_msgs",
                "ament_index_python", "std_msgs", "sensor_msgs", "visualization_msgs",
                "diagnostic_msgs", "geometry_msgs", "std_srvs", "vision_msgs", "launch",
                "launch_ros", "rviz2"}
# System keys, each checked by hand against rosdistro's rosdep/python.yaml. Keys that do not
# exist there (python3-safetensors-pip, python3-onnx-pip, python3-openvino-pip) make
# `rosdep install` fail; python3-pytorch-pip is an end-of-life alias of python3-torch.
ROSDEP_KEYS = {"python3-numpy", "python3-opencv", "python3-yaml", "python3-torch",
               "python3-onnxruntime-pip", "python3-rosbags-pip", "python3-tqdm",
               "python3-pytest"}
PIP_ONLY = ("safetensors", "onnx", "openvino")  # no rosdep key: documented as pip installs
DEPEND_TAGS = ("depend", "build_depend", "exec_depend", "test_depend", "build_export_depend",
               "buildtool_depend")


def import_roots(paths: list[Path]) -> dict[str, set[str]]:
    """Top-level module of every import statement in ``paths`` -> files importing it."""
    roots: dict[str, set[str]] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                roots.setdefault(name.split(".")[0], set()).add(str(path.relative_to(REPO)))
    return roots


def package_sources() -> list[Path]:
    return sorted((REPO / PACKAGE).rglob("*.py"))


def test_installed_package_never_imports_training() -> None:
    """The node, its tools and the runtime run without the repository's training/ package."""
    offenders = import_roots(package_sources()).get("training", set())
    assert not offenders, f"glimpse_ros imports training in {sorted(offenders)}"


def test_wheel_holds_glimpse_ros_only_with_prefixed_console_scripts(tmp_path) -> None:
    """``pip wheel .``: no top-level ``training``; console scripts are glimpse-* only."""
    src = source_copy(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"), "."],
                          cwd=src, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        eps = configparser.ConfigParser()
        eps.read_string(zf.read(entry_points).decode())
    tops = {n.split("/")[0] for n in names}
    assert tops == {PACKAGE, f"{PACKAGE}-0.1.0.data", f"{PACKAGE}-0.1.0.dist-info"}, tops
    assert not any(n.startswith(("training/", "test/")) for n in names)
    assert f"{PACKAGE}/ros/node.py" in names and f"{PACKAGE}/tools/demo.py" in names
    assert f"{PACKAGE}-0.1.0.data/data/share/{PACKAGE}/package.xml" in names
    scripts = dict(eps["console_scripts"])
    assert scripts and all(name.startswith("glimpse-") for name in scripts), sorted(scripts)
    assert {"glimpse-recognizer", "glimpse-replay", "glimpse-demo",
            "glimpse-annotate"} <= set(scripts)
    for target in scripts.values():  # every entry point names a module the wheel holds
        module = target.split(":")[0].strip()
        assert module.replace(".", "/") + ".py" in names, target


def test_colcon_style_install_puts_ros_executables_in_lib(tmp_path) -> None:
    """Colcon's ament_python install: ``lib/glimpse_ros/recognizer`` for ``ros2 run``."""
    src = source_copy(tmp_path)
    (tmp_path / "egg").mkdir()
    prefix = tmp_path / "install"
    # the command line colcon's python build task runs (colcon-core, non-symlink install)
    cmd = [sys.executable, "setup.py", "egg_info", "--egg-base", str(tmp_path / "egg"), "build",
           "--build-base", str(tmp_path / "build"), "install", "--prefix", str(prefix),
           "--record", str(tmp_path / "install.log"), "--single-version-externally-managed"]
    proc = subprocess.run(cmd, cwd=src, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lib = prefix / "lib" / PACKAGE
    for name in ("recognizer", "replay", "demo", "annotate", "glimpse-recognizer"):
        assert os.access(lib / name, os.X_OK), f"{lib / name} missing or not executable"
    assert not (prefix / "bin").exists()  # nothing lands on PATH
    site = next(prefix.glob("lib/python*/site-packages"))
    assert (site / PACKAGE / "ros" / "node.py").is_file() and not (site / "training").exists()
    marker = prefix / "share" / "ament_index" / "resource_index" / "packages" / PACKAGE
    assert marker.is_file()


def test_package_xml_uses_known_keys_and_declares_every_ros_import() -> None:
    """package.xml: format 3, valid rosdep keys, no conditions, all imported ROS packages."""
    root = ET.parse(REPO / "package.xml").getroot()
    assert root.tag == "package" and root.get("format") == "3"
    assert root.findtext("name") == PACKAGE
    deps = [e for tag in DEPEND_TAGS for e in root.iter(tag)]
    keys = {e.text.strip() for e in deps}
    assert not [e.text for e in deps if e.attrib], "conditional dependencies"
    unknown = keys - ROS_PACKAGES - ROSDEP_KEYS
    assert not unknown, f"not ROS packages nor verified rosdep keys: {sorted(unknown)}"
    assert root.find("export/build_type").text == "ament_python"
    roots = import_roots(package_sources() + sorted((REPO / "launch").glob("*.py")))
    ros_imports = {r for r in roots if r in {"rclpy", "launch", "launch_ros",
                                             "ament_index_python"}
                   or r.endswith(("_msgs", "_srvs", "_interfaces"))}
    missing = ros_imports - keys
    assert not missing, {m: sorted(roots[m]) for m in missing}
    exec_keys = {e.text.strip() for e in root.iter("exec_depend")}
    assert {"vision_msgs", "lifecycle_msgs"} <= exec_keys


@pytest.mark.parametrize("name", PIP_ONLY)
def test_readme_documents_pip_only_dependencies(name: str) -> None:
    """Dependencies without a rosdep key are installed with pip, as the README says."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("### Installing in a ROS 2 workspace", 1)[-1].split("\n## ", 1)[0]
    assert f" {name}" in section and "pip install" in section
