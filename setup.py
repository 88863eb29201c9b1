"""Install glimpse_ros as an ament_python ROS 2 package or with plain pip."""

from glob import glob
import os

from setuptools import find_packages, setup

PACKAGE = "glimpse_ros"


def tree(src: str, dest_root: str) -> list[tuple[str, list[str]]]:
    """Map every file below ``src`` to ``share/glimpse_ros/<same relative dir>``."""
    entries: dict[str, list[str]] = {}
    for path in sorted(glob(os.path.join(src, "**", "*"), recursive=True)):
        if os.path.isfile(path):
            entries.setdefault(os.path.join(dest_root, os.path.dirname(path)), []).append(path)
    return sorted(entries.items())


share = os.path.join("share", PACKAGE)
setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (share, ["package.xml"]),
        *tree("launch", share),
        *tree("config", share),
        *tree("models", share),
    ],
    install_requires=["numpy", "pyyaml", "safetensors", "opencv-python-headless", "onnx",
                      "onnxruntime", "openvino"],
    extras_require={"train": ["tqdm", "tensorboard"], "tensorrt": ["tensorrt"]},
    zip_safe=True,
    maintainer="glimpse_ros maintainers",
    maintainer_email="maintainers@glimpse-ros.dev",
    description="Real-time activity recognition with Glimpse Clouds for ROS 2",
    license="Apache-2.0",
    python_requires=">=3.10",
    entry_points={
        "console_scripts": [
            "recognizer = glimpse_ros.recognizer:main",
            "replay = glimpse_ros.replay:main",
            "demo = glimpse_ros.demo:main",
            "glimpse-recognizer = glimpse_ros.recognizer:main",
            "glimpse-replay = glimpse_ros.replay:main",
            "glimpse-demo = glimpse_ros.demo:main",
            "glimpse-export = glimpse_ros.export:main",
        ],
    },
)
