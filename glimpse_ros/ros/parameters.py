"""Node parameters = the fields of RecognizerConfig and NodeConfig, declared with descriptions.

Parameters are declared with dynamic typing and validated by the strict dataclass loader, so that
``-p max_gap_s:=2`` (an integer for a float field) is accepted while ``-p stride:=abc`` or
``-p backend:=cuda`` stop start-up with a message naming the parameter.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node

from glimpse_ros.config import NodeConfig, RecognizerConfig, load_dataclass

DESCRIPTIONS: dict[str, str] = {
    # RecognizerConfig
    "model_path": "Model checkpoint (.safetensors written by glimpse_ros.model.checkpoint)",
    "backend": "Backbone engine: auto, torch, onnxruntime, openvino or tensorrt",
    "precision": "Backbone precision: fp32, fp16 (TensorRT), bf16 (OpenVINO, CPUs with native "
                 "bf16) or int8 (OpenVINO, NNCF-quantised)",
    "num_threads": "CPU threads for the backbone engine (0 = engine default)",
    "engine_cache_dir": "Directory of cached ONNX exports and TensorRT engines",
    "stride": "Run the backbone every `stride` new frames (window of T frames)",
    "head_mode": "stream: keep head state across windows; clip: fresh head state per window",
    "head_precision": "Recurrent head: fp32, or int8 (int8 GRU weights: ~2.4x faster for "
                      "ResNet-50 on CPU, approximates fp32)",
    "max_gap_s": "Reset the streaming state after a gap between frames longer than this (s)",
    "smoothing": "Exponential smoothing factor of the class probabilities, in [0, 1)",
    "top_k": "Number of classes kept in the smoothed top-k",
    "labels_path": "Optional label file overriding the labels stored in the checkpoint",
    # NodeConfig
    "image_topic": "Input image topic (sensor_msgs/Image; <topic>/compressed when compressed)",
    "compressed": "Subscribe to <image_topic>/compressed (sensor_msgs/CompressedImage jpeg/png)",
    "input_reliability": "Input QoS: best_effort (sensor data, REP-2003) or reliable (large "
                         "frames between processes, see README)",
    "camera_info_topic": "CameraInfo topic, for markers in the camera frame ('' = none)",
    "queue_size": "Frames waiting for inference; when full the oldest is dropped and counted",
    "max_frame_pixels": "Frames with more pixels than this are rejected",
    "diagnostics_period_s": "Period of /diagnostics messages (s)",
    "stale_timeout_s": "Diagnostics turn WARN after this long without input (s)",
    "marker_depth_m": "Depth at which glimpse boxes are drawn in the camera frame (m)",
    "marker_lifetime_s": "Lifetime of glimpse markers (s, 0 = forever)",
    "image_plane_frame_id": "Frame of the markers when no CameraInfo was received",
}


# Parameters rclpy declares by itself.
_ROS_PARAMETERS = ("use_sim_time", "start_type_description_service")


class ParameterError(ValueError):
    """An invalid node parameter; the message names it."""


def _declare(node: Node, cls: type) -> dict[str, Any]:
    values = {}
    for field in dataclasses.fields(cls):
        default = field.default
        descriptor = ParameterDescriptor(description=DESCRIPTIONS.get(field.name, field.name),
                                         dynamic_typing=True)
        param = node.declare_parameter(field.name, default, descriptor)
        values[field.name] = param.value
    return values


def declare_config_parameters(node: Node) -> tuple[RecognizerConfig, NodeConfig]:
    """Declare every config field as a parameter of ``node`` and build the two configs.

    Raises:
        ParameterError: naming the parameter when a value has the wrong type or is out of range.
    """
    known = set(parameter_names())
    overrides = getattr(node, "_parameter_overrides", {}) or {}  # rclpy keeps no public accessor
    for name in sorted(overrides):
        if (name not in known and name not in _ROS_PARAMETERS
                and not name.startswith("qos_overrides.")):
            raise ParameterError(f"invalid parameter: {name}: unknown parameter (known: "
                                 f"{', '.join(sorted(known))})")
    configs = []
    for cls in (RecognizerConfig, NodeConfig):
        values = _declare(node, cls)
        try:
            configs.append(load_dataclass(cls, values))
        except ValueError as err:
            raise ParameterError(f"invalid parameter: {err}") from err
    return configs[0], configs[1]


def parameter_names() -> list[str]:
    """All parameter names the node declares (besides ROS's own, e.g. use_sim_time)."""
    return [f.name for cls in (RecognizerConfig, NodeConfig) for f in dataclasses.fields(cls)]
