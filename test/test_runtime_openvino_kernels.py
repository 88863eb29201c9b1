"""The kernels OpenVINO compiled: counted by hand on a made-up graph, read from a real one."""

from __future__ import annotations

import pytest
import torch

from glimpse_ros.config import ModelConfig
from glimpse_ros.runtime.openvino_kernels import summarise_layers
from glimpse_ros.runtime.precision import native_bf16

pytest.importorskip("openvino")

LAYERS = [("Convolution", "bf16", "brgconv_avx512_amx_bf16"),
          ("Convolution", "bf16", "brgconv_avx512_amx_1x1_bf16"),
          ("Convolution", "f32", "jit_avx512_f32"),          # a silent fallback
          ("Concatenation", "f32", "ref_f32"),
          ("Reorder", "bf16", "jit_uni_bf16"),
          ("Reorder", "bf16", "jit_uni_bf16")]


def test_summary_counts_by_hand():
    """Counts per layer:primitive, reference kernels, and convolutions outside the precision."""
    s = summarise_layers(LAYERS, "bf16")
    assert s["kernels"] == {"Concatenation:ref_f32": 1,
                            "Convolution:brgconv_avx512_amx_1x1_bf16": 1,
                            "Convolution:brgconv_avx512_amx_bf16": 1,
                            "Convolution:jit_avx512_f32": 1, "Reorder:jit_uni_bf16": 2}
    assert s["reference_kernels"] == {"Concatenation:ref_f32": 1}
    assert (s["convolutions"], s["convolutions_in_precision"]) == (3, 2)
    assert s["convolution_fallback"] == {"Convolution:f32": 1}
    fp32 = summarise_layers(LAYERS, "fp32")
    assert fp32["convolutions_in_precision"] == 1
    assert fp32["convolution_fallback"] == {"Convolution:bf16": 2}
    with pytest.raises(ValueError, match="precision"):
        summarise_layers(LAYERS, "fp16")


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_compiled_step_runs_the_requested_precision(tmp_path, precision):
    """Every convolution of the compiled step graph runs in the precision asked for.

    fp32 is the case that catches a lost ``INFERENCE_PRECISION_HINT``: on CPUs with native
    bf16 the plugin's default is bf16, which would show here as a fallback.
    """
    if precision == "bf16" and not native_bf16()[0]:
        pytest.skip(native_bf16()[1])
    from glimpse_ros.runtime.export.step import export_step
    from glimpse_ros.runtime.openvino_engine import OpenVinoStepEngine
    from runtime_fixtures import random_backbone

    cfg = ModelConfig.small(temporal_padding="causal", crop_size=64, resize_size=72)
    backbone = random_backbone(cfg).eval()
    path = export_step(backbone, tmp_path / "step.onnx", (1, 3, 64, 64))
    engine = OpenVinoStepEngine(path, threads=1, precision=precision)
    assert engine.kernels() == {}          # nothing compiled yet
    engine._compile((1, 3, 64, 64))
    k = engine.kernels()
    # One compiled convolution per temporal tap of every Conv3d (stem, 3 per block, the
    # projections: kt = 1; each block's conv2 applies its kt = 3 taps as three convolutions).
    assert k["convolutions"] == sum(m.kernel_size[0] for m in backbone.modules()
                                    if isinstance(m, torch.nn.Conv3d))
    assert k["convolutions_in_precision"] == k["convolutions"], k["convolution_fallback"]
    assert sum(k["kernels"].values()) > k["convolutions"]
