"""Frozen configuration dataclasses: model, recognizer and node settings with their ranges.

Every consumer gets its own frozen dataclass (one per consumer, DESIGN §7); each validates its
ranges in ``__post_init__`` and raises ``ValueError`` naming the key. Building them from YAML or
a mapping, strictly, is :mod:`glimpse_ros.config_loader`'s job.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

# ResNet-50: bottleneck blocks per stage (He et al. 2016).
RESNET50_LAYERS: tuple[int, ...] = (3, 4, 6, 3)
# ModelConfig.temporal_padding choices.
TEMPORAL_PADDINGS: tuple[str, ...] = ("symmetric", "causal")
# Sane upper bounds of ModelConfig fields: 4-64x the paper's model. Model files are untrusted, and
# their config is checked against these before anything is built (a hidden size of 20000 would
# allocate gigabytes; 100000 blocks per stage take minutes to construct).
MODEL_LIMITS: dict[str, int] = {
    "num_classes": 100_000, "backbone_width": 256, "frames": 64, "num_glimpses": 64,
    "num_workers": 64, "memory_slots": 1024, "glimpse_hidden": 8192, "worker_hidden": 8192,
    "where_hidden": 8192, "num_joints": 1024, "num_bodies": 16, "crop_size": 512,
    "resize_size": 1024}
MAX_BLOCKS_PER_STAGE = 64  # ResNet-152 has 36
MAX_MEMORY_DECAY = 100.0
ASSIGN_TEMPERATURE_RANGE = (1e-3, 1e3)
# ModelConfig.glimpse_locations choices.
GLIMPSE_LOCATIONS: tuple[str, ...] = ("learned", "random", "oracle")
# ModelConfig.glimpse_border choices (glimpse_ros/model/glimpse.py).
GLIMPSE_BORDERS: tuple[str, ...] = ("clamp", "zeros")
# ModelConfig.glimpse_locator choices (glimpse_ros/model/glimpse.py, map_locator.py).
GLIMPSE_LOCATORS: tuple[str, ...] = ("map", "context")
# ModelConfig.glimpse_pooling choices.
GLIMPSE_POOLINGS: tuple[str, ...] = ("memory", "sum")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the Glimpse Clouds model (DESIGN §2); defaults are the paper's."""

    num_classes: int = 60
    backbone_layers: tuple[int, ...] = RESNET50_LAYERS
    backbone_width: int = 64
    frames: int = 8
    num_glimpses: int = 3
    num_workers: int = 3
    # K: frames kept in the memory, which holds their G glimpse vectors each (K G slots; the paper
    # sets K to T). The name predates that meaning; it counts frames, not vectors.
    memory_slots: int = 8
    glimpse_hidden: int = 1024
    worker_hidden: int = 512
    where_hidden: int = 256
    memory_decay: float = 0.25
    assign_temperature: float = 0.5
    num_joints: int = 25
    num_bodies: int = 2
    crop_size: int = 224
    resize_size: int = 256
    # Time alignment of every 3x3x3 conv (DESIGN §3): "symmetric" sees t-1, t, t+1 (the paper);
    # "causal" sees t-2, t-1, t, so the backbone can step one frame at a time (streaming).
    # Model files written before this field existed load as symmetric (the default).
    temporal_padding: str = "symmetric"
    # Ablation only (paper Table 4, "random sampling"): "random" replaces the location head's
    # output with uniform random boxes drawn from a generator seeded by glimpse_seed, in training
    # and evaluation alike. "oracle" takes the boxes from the caller (the ablation places them on
    # the actor's ground-truth joints, training/oracle.py). "learned" is the model.
    glimpse_locations: str = "learned"
    glimpse_seed: int = 0
    # Reading a glimpse beyond the first / last layer4 cell centre (glimpse.py): "clamp" reads
    # the edge cell; "zeros" blends with zeros (attenuates the right / bottom 14 % of the crop).
    # Model files written before this field existed load as "zeros" (model/checkpoint.py).
    glimpse_border: str = "clamp"
    # Where the glimpses come from: "map" (new models) queries the frame's layer4 cells with
    # [h_g, c_t] and takes the soft arg-max (model/map_locator.py); "context" is the paper's eq. 3
    # literally, W_l [h_g, c_t], whose c_t is a spatial mean: that locator sees no position and
    # lost to the global model and to random glimpses in the ablation (docs/ablation). Files
    # without the field load as "context" (model/checkpoint.py).
    glimpse_locator: str = "map"
    # Ablation only (paper Table 3, "Global model + sum Glimpses + GRU"): "sum" feeds the sum of
    # the G glimpse vectors to a single worker GRU (num_workers must be 1), no memory or soft
    # assignment. "memory" is the model (§4.2).
    glimpse_pooling: str = "memory"
    # Ablation only (paper Table 3, "Glimpse Clouds + Global model"): add the global classifier
    # on the pooled layer4 map to the glimpse cloud's logits (clip forward only, not streamable).
    global_fusion: bool = False

    def __post_init__(self) -> None:
        """Validate ranges that the type check cannot express."""
        positive = ("num_classes", "backbone_width", "frames", "num_glimpses", "num_workers",
                    "memory_slots", "glimpse_hidden", "worker_hidden", "where_hidden",
                    "num_joints",
                    "num_bodies", "crop_size", "resize_size")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"model.{name}: must be > 0, got {getattr(self, name)}")
            if getattr(self, name) > MODEL_LIMITS[name]:
                raise ValueError(f"model.{name}: must be <= {MODEL_LIMITS[name]}, got "
                                 f"{getattr(self, name)}")
        if (len(self.backbone_layers) != 4
                or any(not 0 < n <= MAX_BLOCKS_PER_STAGE for n in self.backbone_layers)):
            raise ValueError(f"model.backbone_layers: need 4 block counts in [1, "
                             f"{MAX_BLOCKS_PER_STAGE}], got {self.backbone_layers}")
        if not (math.isfinite(self.memory_decay) and math.isfinite(self.assign_temperature)):
            raise ValueError(f"model: memory_decay and assign_temperature must be finite, got "
                             f"{self.memory_decay}, {self.assign_temperature}")
        if not 0 <= self.memory_decay <= MAX_MEMORY_DECAY:
            raise ValueError(f"model.memory_decay: must be in [0, {MAX_MEMORY_DECAY:g}], got "
                             f"{self.memory_decay}")
        low, high = ASSIGN_TEMPERATURE_RANGE
        if not low <= self.assign_temperature <= high:
            raise ValueError(f"model.assign_temperature: must be in [{low:g}, {high:g}], "
                             f"got {self.assign_temperature}")
        if self.temporal_padding not in TEMPORAL_PADDINGS:
            raise ValueError(f"model.temporal_padding: {self.temporal_padding!r} is not one of "
                             f"{', '.join(TEMPORAL_PADDINGS)}")
        if self.glimpse_locations not in GLIMPSE_LOCATIONS:
            raise ValueError(f"model.glimpse_locations: {self.glimpse_locations!r} is not one of "
                             f"{', '.join(GLIMPSE_LOCATIONS)}")
        for name, choices in (("glimpse_border", GLIMPSE_BORDERS),
                              ("glimpse_locator", GLIMPSE_LOCATORS),
                              ("glimpse_pooling", GLIMPSE_POOLINGS)):
            if getattr(self, name) not in choices:
                raise ValueError(f"model.{name}: {getattr(self, name)!r} is not one of "
                                 f"{', '.join(choices)}")
        if self.glimpse_pooling == "sum" and self.num_workers != 1:
            raise ValueError(f"model.glimpse_pooling: sum feeds one GRU; set num_workers: 1 "
                             f"(got {self.num_workers})")
        if not 0 <= self.glimpse_seed < 2 ** 63:
            raise ValueError(f"model.glimpse_seed: must be in [0, 2**63), got {self.glimpse_seed}")
        if self.crop_size > self.resize_size:
            raise ValueError(f"model.crop_size: {self.crop_size} exceeds resize_size "
                             f"{self.resize_size}")

    @property
    def causal(self) -> bool:
        """True when the backbone is causal in time (it can then step frame by frame)."""
        return self.temporal_padding == "causal"

    @property
    def feature_dim(self) -> int:
        """Channels of Z (layer4 output): 2048 for ResNet-50."""
        return self.backbone_width * 8 * 4

    @property
    def context_dim(self) -> int:
        """Channels of the context vector c_t (layer3 output): 1024 for ResNet-50."""
        return self.backbone_width * 4 * 4

    @classmethod
    def small(cls, **overrides: Any) -> "ModelConfig":
        """Return the tiny variant used by unit tests and the CPU demo model."""
        base: dict[str, Any] = dict(backbone_layers=(1, 1, 1, 1), backbone_width=8,
                                    glimpse_hidden=64, worker_hidden=32, where_hidden=32,
                                    crop_size=112, resize_size=128)
        base.update(overrides)
        return cls(**base)


@dataclass(frozen=True)
class RecognizerConfig:
    """Streaming recognizer settings (DESIGN §3); the ROS node's parameters mirror these."""

    model_path: str = ""
    backend: str = "auto"
    # Backbone precision (glimpse_ros/runtime/precision.py): fp32 (default, explicit everywhere),
    # fp16 (TensorRT), bf16 (OpenVINO on a CPU with native bf16), int8 (OpenVINO, NNCF
    # post-training quantisation calibrated on synthetic clips), int8_mixed (int8 with the stem
    # and layer1 in bf16: needs native int8 and bf16). Opt-in approximations; `make bench`
    # reports their speed-up and deviation from fp32.
    precision: str = "fp32"
    num_threads: int = 0
    engine_cache_dir: str = "~/.cache/glimpse_ros/engines"
    stride: int = 4
    head_mode: str = "stream"
    # int8: an int8 copy of the head (GRU weights int8, memory metric fp16; see
    # glimpse_ros/model/quantize.py): ~2.4x faster for the ResNet-50 head on CPU, slower for the
    # small one (per-call overhead); opt-in, approximates the fp32 head.
    head_precision: str = "fp32"
    # auto: with an onnxruntime or openvino backbone and the fp32 head, the head step runs as its
    # ONNX export on the same engine (glimpse_ros/runtime/head_runner.py); torch: always eager.
    head_engine: str = "auto"
    max_gap_s: float = 2.0
    # A frame stamped at most this much before the previous one is dropped instead of resetting
    # the sequence (drivers whose stamps jitter backwards by a millisecond now and then).
    stamp_jitter_s: float = 0.005
    smoothing: float = 0.6
    top_k: int = 5
    labels_path: str = ""

    def __post_init__(self) -> None:
        """Validate enumerations and ranges."""
        choices = {"backend": ("auto", "torch", "onnxruntime", "openvino", "tensorrt"),
                   "precision": ("fp32", "fp16", "bf16", "int8", "int8_mixed"),
                   "head_mode": ("stream", "clip"),
                   "head_precision": ("fp32", "int8"), "head_engine": ("auto", "torch")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"recognizer.{name}: {getattr(self, name)!r} is not one of "
                                 f"{', '.join(allowed)}")
        if self.stride < 1:
            raise ValueError(f"recognizer.stride: must be >= 1, got {self.stride}")
        if self.num_threads < 0:
            raise ValueError(f"recognizer.num_threads: must be >= 0, got {self.num_threads}")
        if not self.max_gap_s > 0:  # also rejects NaN
            raise ValueError(f"recognizer.max_gap_s: must be > 0, got {self.max_gap_s}")
        if not 0.0 <= self.stamp_jitter_s <= min(1.0, self.max_gap_s):  # also rejects NaN
            raise ValueError(f"recognizer.stamp_jitter_s: must be in [0, min(1, max_gap_s)], "
                             f"got {self.stamp_jitter_s}")
        if not 0.0 <= self.smoothing < 1.0:
            raise ValueError(f"recognizer.smoothing: must be in [0, 1), got {self.smoothing}")
        if self.top_k < 1:
            raise ValueError(f"recognizer.top_k: must be >= 1, got {self.top_k}")


__all__ = ["ModelConfig", "NodeConfig", "RecognizerConfig", "RESNET50_LAYERS", "TEMPORAL_PADDINGS"]


# tf2 refuses frame ids with a leading '/'; RViz and tf2_ros tools split on whitespace.
FRAME_ID = re.compile(r"[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*")


@dataclass(frozen=True)
class NodeConfig:
    """ROS-side settings of the recognizer node (DESIGN §4); its fields are node parameters."""

    # Relative, as image_pipeline nodes: ``image`` + ``camera_info`` in the node's namespace.
    image_topic: str = "image"
    compressed: bool = False
    input_reliability: str = "best_effort"
    # "" = the sibling of the image topic after remapping (image_transport's convention).
    camera_info_topic: str = ""
    queue_size: int = 2
    max_frame_pixels: int = 4096 * 4096
    diagnostics_period_s: float = 1.0
    stale_timeout_s: float = 3.0
    no_output_timeout_s: float = 10.0
    marker_depth_m: float = 2.0
    marker_lifetime_s: float = 1.0
    image_plane_frame_id: str = "glimpse_image_plane"
    # Output rate tolerated by the frequency status of /diagnostics (0 = no bound).
    min_output_rate_hz: float = 0.0
    max_output_rate_hz: float = 0.0
    # Managed (lifecycle) node: wait for configure/activate instead of starting by itself.
    managed: bool = False

    def __post_init__(self) -> None:
        """Validate ranges."""
        if not self.image_topic:
            raise ValueError("node.image_topic: must not be empty")
        if self.input_reliability not in ("best_effort", "reliable"):
            raise ValueError(f"node.input_reliability: {self.input_reliability!r} is not one of "
                             f"best_effort, reliable")
        for name in ("queue_size", "max_frame_pixels"):
            if getattr(self, name) < 1:
                raise ValueError(f"node.{name}: must be >= 1, got {getattr(self, name)}")
        for name in ("diagnostics_period_s", "stale_timeout_s", "marker_depth_m",
                     "no_output_timeout_s"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):  # also rejects NaN
                raise ValueError(f"node.{name}: must be finite and > 0, got {value}")
        for name in ("marker_lifetime_s", "min_output_rate_hz", "max_output_rate_hz"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"node.{name}: must be finite and >= 0, got {value}")
        if 0 < self.max_output_rate_hz < self.min_output_rate_hz:
            raise ValueError(f"node.max_output_rate_hz: {self.max_output_rate_hz} is below "
                             f"min_output_rate_hz {self.min_output_rate_hz}")
        if not FRAME_ID.fullmatch(self.image_plane_frame_id):
            raise ValueError(f"node.image_plane_frame_id: {self.image_plane_frame_id!r} is not a "
                             f"frame id tf2 and RViz accept (letters, digits, '_', '-', '.', '/'"
                             f" between names; no leading '/', no whitespace)")
