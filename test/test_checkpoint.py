"""Self-describing safetensors checkpoints: round trip, clear errors, no unpickling."""

import json
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from glimpse_ros.config import ModelConfig
from glimpse_ros.model.checkpoint import load_checkpoint, read_metadata, save_checkpoint
from glimpse_ros.model.glimpse_clouds import GlimpseClouds

LABELS = ["a", "b", "c"]


@pytest.fixture()
def small_model() -> GlimpseClouds:
    torch.manual_seed(0)
    return GlimpseClouds(ModelConfig.small(num_classes=3)).eval()


def test_round_trip_restores_config_labels_and_outputs(tmp_path: Path,
                                                       small_model: GlimpseClouds) -> None:
    path = save_checkpoint(tmp_path / "m.safetensors", small_model, LABELS, {"seed": 7})
    loaded = load_checkpoint(path)
    assert loaded.config == small_model.config and loaded.labels == LABELS
    assert loaded.metadata == {"seed": 7}
    x = torch.randn(1, 3, 8, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x).logits, small_model(x).logits)


def test_round_trip_keeps_causal_temporal_padding(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = GlimpseClouds(ModelConfig.small(num_classes=3, temporal_padding="causal")).eval()
    loaded = load_checkpoint(save_checkpoint(tmp_path / "m.safetensors", model, LABELS))
    assert loaded.config.temporal_padding == "causal" and loaded.model.backbone.causal
    x = torch.randn(1, 3, 5, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x).step_logits, model(x).step_logits)
        _, out = loaded.model.step(x[:, :, 0])  # a causal model file can step
    torch.testing.assert_close(out.logits, model(x[:, :, :1]).step_logits[:, 0])


def test_model_file_without_temporal_padding_loads_symmetric(tmp_path: Path,
                                                             small_model: GlimpseClouds) -> None:
    """Model files written before the field existed are the paper's symmetric model."""
    path = save_checkpoint(tmp_path / "m.safetensors", small_model, LABELS)
    config = read_metadata(path)["model_config"]
    del config["temporal_padding"]
    state = {k: v.contiguous() for k, v in small_model.state_dict().items()}
    old = tmp_path / "old.safetensors"
    save_file(state, str(old), metadata={"format": "glimpse_ros/1",
                                         "model_config": json.dumps(config),
                                         "labels": json.dumps(LABELS), "extra": "{}"})
    loaded = load_checkpoint(old)
    assert loaded.config.temporal_padding == "symmetric" and not loaded.model.backbone.causal
    x = torch.randn(1, 3, 4, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x).logits, small_model(x).logits)


def test_label_count_mismatch_is_refused(tmp_path: Path, small_model: GlimpseClouds) -> None:
    with pytest.raises(ValueError, match="2 labels for a model with 3 classes"):
        save_checkpoint(tmp_path / "m.safetensors", small_model, LABELS[:2])


def test_shape_mismatch_names_file_and_tensor(tmp_path: Path, small_model: GlimpseClouds) -> None:
    path = save_checkpoint(tmp_path / "m.safetensors", small_model, LABELS)
    meta = read_metadata(path)
    state = {k: v.contiguous() for k, v in small_model.state_dict().items()}
    key = "global_fc.weight"
    state[key] = torch.zeros(4, state[key].shape[1])
    bad = tmp_path / "bad.safetensors"
    save_file(state, str(bad), metadata={"format": "glimpse_ros/1",
                                         "model_config": json.dumps(meta["model_config"]),
                                         "labels": json.dumps(LABELS), "extra": "{}"})
    with pytest.raises(ValueError, match=rf"bad\.safetensors: {key} has shape \(4,"):
        load_checkpoint(bad)


class _Boom:
    def __reduce__(self):  # noqa: D105 - executed only if someone unpickles the file
        return (Path("/tmp/glimpse_ros_pwned").touch, ())


def test_pickle_checkpoint_is_refused_without_executing(tmp_path: Path) -> None:
    marker = Path("/tmp/glimpse_ros_pwned")
    marker.unlink(missing_ok=True)
    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps({"w": _Boom()}))
    with pytest.raises(ValueError, match="evil.safetensors"):
        load_checkpoint(evil)
    evil_pt = tmp_path / "evil.pt"
    torch.save({"w": _Boom()}, evil_pt)
    with pytest.raises(ValueError, match="evil.pt"):
        load_checkpoint(evil_pt)
    assert not marker.exists()


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="nope.safetensors: checkpoint file not found"):
        load_checkpoint(tmp_path / "nope.safetensors")


@pytest.mark.parametrize("first_bytes", [b"\x80", b"PK"])
def test_safetensors_whose_header_length_starts_like_a_pickle_loads(
        tmp_path: Path, small_model: GlimpseClouds, first_bytes: bytes) -> None:
    """A safetensors file whose header length begins like a pickle or a zip is still read.

    Its u64 header length can begin with 0x80 or "PK"; the 9th byte is the JSON header's "{".
    """
    from safetensors import safe_open
    from safetensors.torch import load_file

    good = save_checkpoint(tmp_path / "good.safetensors", small_model, LABELS)
    with safe_open(str(good), framework="pt") as f:
        meta = dict(f.metadata())
    tensors = load_file(str(good))
    path = tmp_path / "padded.safetensors"
    for pad in range(0, 70000, 8):  # the header is padded to 8 bytes: step the length by 8
        extra = json.loads(meta.get("extra", "{}"))
        extra["pad"] = "x" * pad
        save_file(tensors, str(path), metadata={**meta, "extra": json.dumps(extra)})
        if path.read_bytes()[:len(first_bytes)] == first_bytes:
            break
    else:
        pytest.fail("no padding gave the wanted header length")
    assert read_metadata(path)["labels"] == LABELS
    assert load_checkpoint(path).labels == LABELS
