"""Node parameters = the fields of RecognizerConfig and NodeConfig, with typed descriptors.

Every field is declared with its type (``dynamic_typing`` off), a range where it is numeric and
``read_only`` when changing it needs a restart (model, engine, topics, QoS, queue). The others are
*live*: an on-set callback (``RecognizerNode``) validates a change with ``updated_configs`` and
applies it or rejects it with the reason, so ``get`` always equals what the node uses.

At start-up an integer given for a floating-point parameter (``-p max_gap_s:=2``) is accepted as
its float; any other wrong type, a value out of range, an unknown parameter or an invalid topic
name raises ``ParameterError`` naming the parameter, before anything else is built.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass
from typing import Any, Iterable

from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                ParameterType)
from rclpy.exceptions import ParameterException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.validate_topic_name import validate_topic_name

from glimpse_ros.config import NodeConfig, RecognizerConfig
from glimpse_ros.config_loader import load_dataclass


@dataclass(frozen=True)
class ParamSpec:
    """How one config field is exposed as a parameter.

    Attributes:
        description: shown by ``ros2 param describe``.
        live: changeable at run time (applied from the next frame); otherwise read-only.
        low, high: inclusive numeric range (None: no range).
        choices: allowed strings (checked by the config dataclass, listed in the descriptor).
        topic: a topic name, validated with rclpy's rules ("" allowed for camera_info_topic).
    """

    description: str
    live: bool = False
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    topic: bool = False


# CPUs this process may use (the affinity mask, not the host's count when confined).
MAX_THREADS = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
               else os.cpu_count() or 1)
SPECS: dict[str, ParamSpec] = {
    # RecognizerConfig
    "model_path": ParamSpec("Model checkpoint (.safetensors written by "
                            "glimpse_ros.model.checkpoint); '' = the shipped demo model"),
    "backend": ParamSpec("Backbone engine", choices=("auto", "torch", "onnxruntime", "openvino",
                                                     "tensorrt")),
    "precision": ParamSpec("Backbone precision: fp32, fp16 (TensorRT), bf16 (OpenVINO, CPUs with "
                           "native bf16), int8 (OpenVINO, NNCF-quantised) or int8_mixed (int8, "
                           "the stem and layer1 in bf16)",
                           choices=("fp32", "fp16", "bf16", "int8", "int8_mixed")),
    "num_threads": ParamSpec("CPU threads for the backbone engine (0 = cores - 1, at least 1)",
                             low=0, high=MAX_THREADS),
    "engine_cache_dir": ParamSpec("Directory of cached ONNX exports and TensorRT engines"),
    "stride": ParamSpec("Run the backbone every `stride` new frames (window of T frames; at "
                        "most T)", live=True, low=1, high=64),
    "head_mode": ParamSpec("stream: keep head state across windows; clip: fresh head state per "
                           "window", choices=("stream", "clip")),
    "head_precision": ParamSpec("Recurrent head: fp32, or int8 (int8 weights: the exported head "
                                "on openvino, eager torch otherwise; approximates fp32)",
                                choices=("fp32", "int8")),
    "head_engine": ParamSpec("Head step engine: auto = the exported fp32 head step on the "
                             "backbone's engine (onnxruntime/openvino; otherwise eager torch), "
                             "torch = always eager PyTorch", choices=("auto", "torch")),
    "max_gap_s": ParamSpec("Reset the streaming state after a gap between frames longer than "
                           "this (s; must exceed the camera's frame period)", live=True,
                           low=0.1, high=3600.0),
    "stamp_jitter_s": ParamSpec("A frame stamped at most this much (s) before the previous one "
                                "is dropped and counted instead of resetting the sequence (at "
                                "most max_gap_s)", live=True, low=0.0, high=1.0),
    "smoothing": ParamSpec("Exponential smoothing factor of the class probabilities (0 = none)",
                           live=True, low=0.0, high=0.99),
    "top_k": ParamSpec("Number of classes kept in the smoothed top-k", live=True, low=1,
                       high=1000),
    "labels_path": ParamSpec("Optional label file overriding the labels stored in the "
                             "checkpoint"),
    # NodeConfig
    "image_topic": ParamSpec("Input image topic (sensor_msgs/Image; <topic>/compressed when "
                             "compressed)", topic=True),
    "compressed": ParamSpec("Subscribe to <image_topic>/compressed (sensor_msgs/CompressedImage "
                            "jpeg/png)"),
    "input_reliability": ParamSpec("Input QoS default (qos_overrides.<topic>.subscription.* "
                                   "override it): best_effort (sensor data, REP-2003) or "
                                   "reliable (large frames between processes, see README)",
                                   choices=("best_effort", "reliable")),
    "camera_info_topic": ParamSpec("CameraInfo topic; '' = camera_info next to the image topic "
                                   "after remapping (image_transport's convention)", topic=True),
    "queue_size": ParamSpec("Frames waiting for inference; when full the oldest is dropped and "
                            "counted", low=1, high=64),
    "max_frame_pixels": ParamSpec("Frames with more pixels than this are rejected", live=True,
                                  low=1, high=8192 * 8192),
    "diagnostics_period_s": ParamSpec("Period of /diagnostics messages (s)", low=0.01,
                                      high=60.0),
    "stale_timeout_s": ParamSpec("Diagnostics turn WARN after this long without input (s)",
                                 live=True, low=0.1, high=3600.0),
    "no_output_timeout_s": ParamSpec("Diagnostics turn WARN when frames arrive but nothing was "
                                     "published for this long (s)", live=True, low=0.1,
                                     high=3600.0),
    "marker_depth_m": ParamSpec("Depth at which glimpse boxes are drawn in the camera frame (m)",
                                live=True, low=0.01, high=1000.0),
    "marker_lifetime_s": ParamSpec("Lifetime of glimpse markers (s, 0 = forever)", live=True,
                                   low=0.0, high=3600.0),
    "image_plane_frame_id": ParamSpec("Frame of the ~/glimpses markers (image plane, 1 m = "
                                      "image width); a tf2 frame id: no leading '/', no "
                                      "whitespace", live=True),
    "min_output_rate_hz": ParamSpec("Diagnostics frequency status: WARN below this output rate "
                                    "(Hz, 0 = no lower bound)", live=True, low=0.0, high=1000.0),
    "max_output_rate_hz": ParamSpec("Diagnostics frequency status: WARN above this output rate "
                                    "(Hz, 0 = no upper bound)", live=True, low=0.0, high=1000.0),
    "managed": ParamSpec("Lifecycle node: wait for configure/activate (lifecycle_msgs "
                         "services) instead of starting by itself"),
}
DESCRIPTIONS: dict[str, str] = {name: spec.description for name, spec in SPECS.items()}
CONFIG_CLASSES: tuple[type, ...] = (RecognizerConfig, NodeConfig)
# Parameters rclpy declares by itself.
_ROS_PARAMETERS = ("use_sim_time", "start_type_description_service")
_TYPES = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
          float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING}


class ParameterError(ValueError):
    """An invalid node parameter; the message names it."""


def descriptor(name: str, field_type: type) -> ParameterDescriptor:
    """Typed descriptor of parameter ``name`` (range, read_only, constraints text)."""
    spec = SPECS[name]
    desc = ParameterDescriptor(name=name, type=_TYPES[field_type], description=spec.description,
                               read_only=not spec.live, dynamic_typing=False)
    constraints = []
    if spec.low is not None and spec.high is not None:
        if field_type is int:
            desc.integer_range = [IntegerRange(from_value=int(spec.low), to_value=int(spec.high),
                                               step=1)]
        else:
            desc.floating_point_range = [FloatingPointRange(
                from_value=float(spec.low), to_value=float(spec.high), step=0.0)]
        constraints.append(f"in [{spec.low}, {spec.high}]")
    if spec.choices:
        constraints.append("one of " + ", ".join(spec.choices))
    if spec.topic:
        constraints.append("a valid topic name")
    constraints.append("changeable at run time" if spec.live else "read-only (restart to change)")
    desc.additional_constraints = "; ".join(constraints)
    return desc


def field_types() -> dict[str, type]:
    """Parameter name -> Python type of its config field."""
    return {name: hint for cls in CONFIG_CLASSES
            for name, hint in typing.get_type_hints(cls).items()}


def check_topic(name: str, value: str, node: Node) -> None:
    """Raise ParameterError unless ``value`` is "" (camera_info only) or a valid topic name."""
    if value == "" and name == "camera_info_topic":
        return
    try:
        validate_topic_name(value)
        node.resolve_topic_name(value)
    except Exception as err:  # InvalidTopicNameException, RCLError (e.g. repeated '/')
        first = str(err).splitlines()[0]
        raise ParameterError(f"invalid parameter: {name}: {value!r} is not a valid topic name "
                             f"({first})") from None


def _coerce_overrides(node: Node, types: dict[str, type]) -> None:
    """Accept an integer override for a floating-point parameter (``-p max_gap_s:=2``)."""
    overrides = getattr(node, "_parameter_overrides", None)  # rclpy keeps no public accessor
    if not overrides:
        return
    for name, param in list(overrides.items()):
        if types.get(name) is float and param.type_ == Parameter.Type.INTEGER:
            overrides[name] = Parameter(name, Parameter.Type.DOUBLE, float(param.value))


def integers_as_doubles(params: list[Parameter]) -> list[Parameter]:
    """Pre-set callback: an integer for a floating-point parameter becomes a double.

    At start-up ``-p max_gap_s:=2`` is accepted (:func:`_coerce_overrides`); at run time rclpy
    would refuse ``max_gap_s 2`` with "Wrong parameter type, expected '3' got '2'". Other values
    pass unchanged (rclpy then checks types and ranges against the descriptors).
    """
    types = field_types()
    return [Parameter(p.name, Parameter.Type.DOUBLE, float(p.value))
            if types.get(p.name) is float and p.type_ == Parameter.Type.INTEGER else p
            for p in params]


def declare_config_parameters(node: Node) -> tuple[RecognizerConfig, NodeConfig]:
    """Declare every config field as a parameter of ``node`` and build the two configs.

    Raises:
        ParameterError: naming the parameter when it is unknown, has the wrong type, is out of
            range, is not a valid topic name or is refused by the config dataclass.
    """
    known = set(SPECS)
    overrides = getattr(node, "_parameter_overrides", {}) or {}
    for name in sorted(overrides):
        if (name not in known and name not in _ROS_PARAMETERS
                and not name.startswith("qos_overrides.")):
            raise ParameterError(f"invalid parameter: {name}: unknown parameter (known: "
                                 f"{', '.join(sorted(known))})")
    types = field_types()
    _coerce_overrides(node, types)
    configs = []
    for cls in CONFIG_CLASSES:
        values = {}
        for field in dataclasses.fields(cls):
            desc = descriptor(field.name, types[field.name])
            try:
                param = node.declare_parameter(field.name, field.default, desc)
            except ParameterException as err:
                reason = str(err).rsplit(": ", 1)[0]  # rclpy appends ": <name>"
                raise ParameterError(f"invalid parameter: {field.name}: {reason} "
                                     f"({desc.additional_constraints})") from None
            values[field.name] = param.value
            if SPECS[field.name].topic:
                check_topic(field.name, param.value, node)
        try:
            configs.append(load_dataclass(cls, values))
        except ValueError as err:
            raise ParameterError(f"invalid parameter: {err}") from None
    return configs[0], configs[1]


def updated_configs(recognizer: RecognizerConfig, node_config: NodeConfig,
                    params: Iterable[Parameter]) -> tuple[RecognizerConfig, NodeConfig]:
    """The configs after a run-time change of ``params`` (others, e.g. qos_overrides, ignored).

    Types, ranges and read-only were checked by rclpy from the descriptors already; this adds
    the cross-field checks of the config dataclasses.

    Raises:
        ParameterError: the new value is refused (message names the parameter and why).
    """
    changes: list[dict[str, Any]] = [{}, {}]
    for param in params:
        for i, cls in enumerate(CONFIG_CLASSES):
            if param.name in {f.name for f in dataclasses.fields(cls)}:
                changes[i][param.name] = param.value
    out = []
    for current, change in zip((recognizer, node_config), changes):
        values = dataclasses.asdict(current) | change
        try:
            out.append(load_dataclass(type(current), values))
        except ValueError as err:
            raise ParameterError(f"invalid parameter: {err}") from None
    return out[0], out[1]


def parameter_names() -> list[str]:
    """All parameter names the node declares (besides ROS's own, e.g. use_sim_time)."""
    return [f.name for cls in CONFIG_CLASSES for f in dataclasses.fields(cls)]


__all__ = ["DESCRIPTIONS", "ParamSpec", "ParameterError", "SPECS", "declare_config_parameters",
           "descriptor", "integers_as_doubles", "parameter_names", "updated_configs"]
