"""Strict config loading: unknown keys and wrong types name the offending key."""

from pathlib import Path

import pytest

from glimpse_ros.config import ModelConfig, RecognizerConfig
from glimpse_ros.config_loader import load_dataclass, load_yaml_config, to_dict


def test_defaults_are_paper_resnet50() -> None:
    cfg = ModelConfig()
    assert cfg.backbone_layers == (3, 4, 6, 3)
    assert (cfg.feature_dim, cfg.context_dim) == (2048, 1024)
    assert (cfg.num_glimpses, cfg.num_workers, cfg.memory_slots, cfg.frames) == (3, 3, 8, 8)


def test_small_variant_overrides() -> None:
    cfg = ModelConfig.small(num_classes=8)
    assert cfg.num_classes == 8 and cfg.backbone_layers == (1, 1, 1, 1)
    assert cfg.feature_dim == 256 and cfg.context_dim == 128


def test_round_trip_through_dict() -> None:
    cfg = ModelConfig.small(num_classes=5)
    assert load_dataclass(ModelConfig, to_dict(cfg)) == cfg


@pytest.mark.parametrize("values, needle", [
    ({"strid": 2}, "recognizer.strid: unknown key"),
    ({"stride": "4"}, "recognizer.stride: expected an integer"),
    ({"stride": True}, "recognizer.stride: expected an integer"),
    ({"stride": 0}, "recognizer.stride"),
    ({"backend": "cuda"}, "recognizer.backend"),
    ({"head_mode": "batch"}, "recognizer.head_mode"),
    ({"max_gap_s": "1s"}, "recognizer.max_gap_s: expected a number"),
])
def test_recognizer_config_errors_name_the_key(values: dict, needle: str) -> None:
    with pytest.raises(ValueError, match=needle.replace(".", r"\.")):
        load_dataclass(RecognizerConfig, values, where="recognizer")


def test_model_config_tuple_and_range_checks() -> None:
    with pytest.raises(ValueError, match=r"model\.backbone_layers\[1\]"):
        load_dataclass(ModelConfig, {"backbone_layers": [1, "2", 3, 4]}, where="model")
    with pytest.raises(ValueError, match="backbone_layers"):
        ModelConfig(backbone_layers=(1, 1, 1))
    with pytest.raises(ValueError, match="crop_size"):
        ModelConfig(crop_size=300)
    with pytest.raises(ValueError, match=r"model\.temporal_padding: 'future'"):
        load_dataclass(ModelConfig, {"temporal_padding": "future"}, where="model")
    assert ModelConfig().temporal_padding == "symmetric" and not ModelConfig().causal
    assert ModelConfig(temporal_padding="causal").causal


def test_float_accepts_int_and_yaml_sections(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("recognizer:\n  max_gap_s: 3\n  stride: 2\n")
    cfg = load_yaml_config(RecognizerConfig, path, section="recognizer")
    assert cfg.max_gap_s == 3.0 and isinstance(cfg.max_gap_s, float) and cfg.stride == 2
    path.write_text("recognizer:\n  bogus: 1\n")
    with pytest.raises(ValueError, match=r"recognizer\.bogus"):
        load_yaml_config(RecognizerConfig, path, section="recognizer")
    path.write_text("- just\n- a list\n")
    with pytest.raises(ValueError, match="mapping"):
        load_yaml_config(RecognizerConfig, path)


def test_optional_fields_accept_null_or_the_type_and_reject_others() -> None:
    """A ``X | None`` field takes null or an X; anything else names the key."""
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class WithOptional:
        limit: int | None = None

    assert load_dataclass(WithOptional, {"limit": None}).limit is None
    assert load_dataclass(WithOptional, {"limit": 3}).limit == 3
    with pytest.raises(ValueError, match=r"opt\.limit: 'x' matches none"):
        load_dataclass(WithOptional, {"limit": "x"}, where="opt")
