"""Hostile model files are refused before anything is allocated, naming the file and the field."""

from __future__ import annotations

import pytest
import torch

import glimpse_ros.model.checkpoint as checkpoint_module
from glimpse_ros.config import ModelConfig
from glimpse_ros.model.checkpoint import load_checkpoint
from glimpse_ros.model.checkpoint_checks import expected_tensors, tensor_bytes
from glimpse_ros.model.glimpse_clouds import GlimpseClouds
from glimpse_ros.tools.reliability_model_files import HOSTILE_CONFIGS, hostile_model_files

pytest.importorskip("safetensors")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Every hostile case of reliability_faults, written once."""
    return hostile_model_files(tmp_path_factory.mktemp("hostile"))


def _no_allocation(monkeypatch) -> None:
    """Fail the test if weights are read or a model is built on a real device."""
    def refuse(*args, **kwargs):
        raise AssertionError("weights were loaded before the file was validated")

    monkeypatch.setattr(checkpoint_module, "load_file", refuse)
    monkeypatch.setattr(checkpoint_module, "GlimpseClouds", refuse)


@pytest.mark.parametrize("case", sorted(HOSTILE_CONFIGS) + ["float64_tensor", "truncated",
                                                            "padded"])
def test_bad_config_or_header_refused_before_loading(files, case, monkeypatch) -> None:
    """Out-of-bounds / mistyped configs and header mismatches: ValueError naming file and field.

    Nothing is read or built: load_file and the real model constructor would fail the test.
    """
    path, field = files[case]
    _no_allocation(monkeypatch)
    with pytest.raises(ValueError) as err:
        load_checkpoint(path)
    assert path.name in str(err.value) and field in str(err.value), str(err.value)


@pytest.mark.parametrize("case", ["nan_weight", "inf_weight", "huge_weight"])
def test_non_finite_or_huge_weights_refused(files, case) -> None:
    """NaN, Inf and 1e38 in a weight tensor: refused, naming the file and the tensor."""
    path, key = files[case]
    with pytest.raises(ValueError, match=rf"{path.name}: {key} holds") as err:
        load_checkpoint(path)
    assert ("non-finite" in str(err.value)) == (case != "huge_weight")


def test_expected_tensors_match_a_real_model_without_allocating() -> None:
    """The meta-device shapes equal a real model's state dict; bytes = sum of numel * size."""
    cfg = ModelConfig.small(num_classes=5, crop_size=32, resize_size=40)
    spec = expected_tensors(cfg)
    real = GlimpseClouds(cfg).state_dict()
    assert {k: (tuple(v.shape), v.dtype) for k, v in real.items()} == spec
    assert tensor_bytes(spec) == sum(v.numel() * v.element_size() for v in real.values())


def test_resnet50_size_known_without_building_it() -> None:
    """The paper model's parameter bytes come from the meta device (no 300 MB allocation)."""
    spec = expected_tensors(ModelConfig())
    floats = sum(torch.Size(s).numel() for s, d in spec.values() if d == torch.float32)
    assert 60e6 < floats < 90e6
