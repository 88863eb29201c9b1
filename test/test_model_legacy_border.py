"""An old model file keeps computing what it computed before ``glimpse_border`` existed.

The file is the demo model shipped until 2026-12-06 (``test/data/legacy_demo_model.safetensors``,
commit ac0f575), written before ``glimpse_border`` and ``glimpse_locator`` existed; the loader
reads it as ``zeros`` and ``context`` (``checkpoint.LEGACY_MODEL_FIELDS``). The reference numbers
below were computed with the code before the border field was added (commit 3467aee): the
clip forward of a seeded noise clip, and the head on that clip's features with the context scaled
by +5 / -5, which drives the glimpses past the first / last layer4 cell centres (top-left and
bottom-right), where the border rule matters.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from glimpse_ros.model.checkpoint import load_checkpoint, read_metadata, save_checkpoint
from glimpse_ros.model.glimpse_clouds import GlimpseClouds

CLIP_LOGITS = [3.4845, -1.3516, 3.5343, -2.7646, -1.6394, -2.166, -1.0034, -0.3114, 5.8149]
HEAD = {  # context scale -> (logits, glimpse of frame 7, glimpse 0)
    5.0: ([3.724, -0.326, 1.8175, -2.5689, -0.9815, -2.1026, -2.3459, -0.4761, 5.8826],
          [-0.846, -0.5417, 0.0076, 0.5448]),
    -5.0: ([3.4106, -2.36, 4.8871, -1.928, -1.1826, -1.4995, -0.5065, -0.3539, 4.4439],
           [0.8674, 0.7161, 0.9258, 0.3207]),
}
LEGACY = Path(__file__).resolve().parent / "data" / "legacy_demo_model.safetensors"
TOL = 2e-4  # the references are rounded to 4 decimals; float32 kernels differ by ~1e-6


@pytest.fixture(scope="module")
def demo():
    """The old demo model, and a seeded noise clip."""
    loaded = load_checkpoint(LEGACY)
    x = torch.randn(1, 3, 8, 112, 112, generator=torch.Generator().manual_seed(19))
    return loaded, x


def _clamped(loaded) -> GlimpseClouds:
    model = GlimpseClouds(dataclasses.replace(loaded.config, glimpse_border="clamp")).eval()
    model.load_state_dict(loaded.model.state_dict())
    return model


def test_demo_file_has_no_border_field_and_loads_as_zeros(demo) -> None:
    """The stored config predates the fields; the loaded one says zeros and context."""
    loaded, _ = demo
    stored = read_metadata(LEGACY)["model_config"]
    assert "glimpse_border" not in stored and "glimpse_locator" not in stored
    assert loaded.config.glimpse_border == "zeros"
    assert loaded.config.glimpse_locator == "context"


@torch.no_grad()
def test_demo_outputs_equal_the_numbers_from_before_the_field(demo) -> None:
    """Clip logits and border-reaching head outputs match the pre-change references."""
    loaded, x = demo
    model = loaded.model
    torch.testing.assert_close(model(x).logits[0], torch.tensor(CLIP_LOGITS), atol=TOL, rtol=0)
    z, c = model.backbone(x)
    for scale, (logits, glimpse) in HEAD.items():
        out = model.head(z, scale * c)
        torch.testing.assert_close(out.logits[0], torch.tensor(logits), atol=TOL, rtol=0)
        torch.testing.assert_close(out.glimpses[0, 7, 0], torch.tensor(glimpse), atol=TOL,
                                   rtol=0)


@torch.no_grad()
def test_clamp_would_change_the_demo_outputs_at_the_borders(demo) -> None:
    """The references are sensitive: the same weights with clamp differ where glimpses reach."""
    loaded, x = demo
    clamped = _clamped(loaded)
    z, c = loaded.model.backbone(x)
    for scale, (logits, _) in HEAD.items():
        diff = (clamped.head(z, scale * c).logits[0] - torch.tensor(logits)).abs().max()
        assert float(diff) > 10 * TOL, scale


def test_new_files_store_the_field_and_round_trip(demo, tmp_path) -> None:
    """A file saved now carries glimpse_border; clamp stays clamp after loading."""
    loaded, _ = demo
    path = save_checkpoint(tmp_path / "clamp.safetensors", _clamped(loaded), loaded.labels)
    assert read_metadata(path)["model_config"]["glimpse_border"] == "clamp"
    assert read_metadata(path)["model_config"]["glimpse_locator"] == "context"
    assert load_checkpoint(path).config.glimpse_border == "clamp"
    # An explicit "zeros" in an old-style file is honoured too, and a typo names the field.
    meta = dict(read_metadata(path))
    tensors = load_file(str(path))
    for value, ok in (("zeros", True), ("edge", False)):
        cfg = dict(meta["model_config"], glimpse_border=value)
        other = tmp_path / f"{value}.safetensors"
        save_file(tensors, str(other), metadata={
            "format": "glimpse_ros/1", "model_config": json.dumps(cfg),
            "labels": json.dumps(meta["labels"]), "extra": "{}"})
        if ok:
            assert load_checkpoint(other).config.glimpse_border == value
        else:
            with pytest.raises(ValueError, match="glimpse_border"):
                load_checkpoint(other)
