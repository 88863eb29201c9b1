"""Install glimpse_ros as an ament_python ROS 2 package or with plain pip."""

from glob import glob
import os
import sys

from setuptools import find_packages, setup

PACKAGE = "glimpse_ros"


def tree(src: str, dest_root: str) -> list[tuple[str, list[str]]]:
    """Map every file below ``src`` to ``share/glimpse_ros/<same relative dir>``."""
    entries: dict[str, list[str]] = {}
    for path in sorted(glob(os.path.join(src, "**", "*"), recursive=True)):
        if os.path.isfile(path):
            entries.setdefault(os.path.join(dest_root, os.path.dirname(path)), []).append(path)
    return sorted(entries.items())


# Executables: module:function by name. pip installs put them on PATH as ``glimpse-<name>``.
# colcon builds ament_python packages with ``setup.py ... install`` / ``develop``; setup.cfg then
# places the scripts in lib/glimpse_ros, where ``ros2 run glimpse_ros <name>`` and launch files
# look. Only such a build also gets the short ROS names (``recognizer``, ``replay``, ...), which
# are too generic for a PATH shared with other software.
EXECUTABLES = {
    "recognizer": "glimpse_ros.recognizer:main",
    "replay": "glimpse_ros.replay:main",
    "demo": "glimpse_ros.demo:main",
    "annotate": "glimpse_ros.annotate:main",
    "export": "glimpse_ros.export:main",
}
AMENT_EXECUTABLES = ("recognizer", "replay", "demo", "annotate")
AMENT_BUILD = bool({"install", "develop"} & set(sys.argv[1:]))
console_scripts = [f"glimpse-{name} = {target}" for name, target in EXECUTABLES.items()]
if AMENT_BUILD:
    console_scripts += [f"{name} = {EXECUTABLES[name]}" for name in AMENT_EXECUTABLES]

share = os.path.join("share", PACKAGE)
setup(
    name=PACKAGE,
    version="0.1.0",
    # training/ runs from the source checkout (python training/train.py), it is not installed.
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (share, ["package.xml"]),
        *tree("launch", share),
        *tree("config", share),
        *tree("models", share),
    ],
    install_requires=["numpy", "pyyaml", "safetensors", "opencv-python-headless", "onnx",
                      "onnxruntime", "openvino", "rosbags", "tqdm"],
    extras_require={"train": ["tensorboard"], "tensorrt": ["tensorrt"]},
    zip_safe=True,
    maintainer="glimpse_ros maintainers",
    maintainer_email="maintainers@glimpse-ros.dev",
    description="Real-time activity recognition with Glimpse Clouds for ROS 2",
    license="Apache-2.0",
    python_requires=">=3.10",
    entry_points={"console_scripts": console_scripts},
)
