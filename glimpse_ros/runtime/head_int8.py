"""The exported head step with int8 weights for OpenVINO (NNCF weight compression), cached.

At batch 1 the head step is a chain of matrix-vector products: the glimpse GRU runs ``G`` times
per frame over its 9.4 M weights, and the workers, the memory metric and the what&where MLP
add 18 M more (ResNet-50 head). In fp32 that is about 180 MB of weights read per frame, and the
OpenVINO profile puts 94 % of the step in ``FullyConnected`` layers. NNCF's weight-only
compression stores those weights as symmetric per-output-channel int8 (the activations and the
state stay float32; the CPU plugin dequantises inside its matrix kernels), a quarter of the
bytes. No calibration data is needed: the weights alone set the scales, so the result is
deterministic.

``head_int8_model(onnx_path, cache_dir)`` writes ``<cache>/onnx/head-w8-<sha256(ONNX)[:24]>-
nncf<version>-v<HEAD_INT8_VERSION>.xml`` (+ ``.bin``) once and returns it; a damaged file is
rebuilt. ``nncf`` is imported only here, on first use.
"""

from __future__ import annotations

import logging
from pathlib import Path

from glimpse_ros.runtime.ir_files import cached_ir, save_ir
from glimpse_ros.runtime.model_files import cache_root, file_sha256

LOG = logging.getLogger("glimpse_ros.runtime")

# Bump when the compression settings change, so cached files are not reused.
HEAD_INT8_VERSION = 1


def head_int8_path(onnx_path: str | Path, cache_dir: str | Path | None) -> Path:
    """Where the int8-weight IR of the head export ``onnx_path`` is cached."""
    import nncf

    digest = file_sha256(onnx_path)[:24]
    return (cache_root(cache_dir) / "onnx"
            / f"head-w8-{digest}-nncf{nncf.__version__}-v{HEAD_INT8_VERSION}.xml")


def compress_head(onnx_path: str | Path, out: str | Path) -> Path:
    """Compress the weights of the head export ``onnx_path`` to int8; write the IR to ``out``.

    Written atomically: the ``.bin`` first, the ``.xml`` (whose presence means complete) last.
    """
    import nncf
    import openvino as ov

    nncf.set_log_level(logging.WARNING)
    model = nncf.compress_weights(ov.Core().read_model(str(onnx_path)),
                                  mode=nncf.CompressWeightsMode.INT8_SYM)
    out = save_ir(model, out)
    LOG.info("head int8: wrote %s (int8 weights, NNCF %s)", out, nncf.__version__)
    return out


def head_int8_model(onnx_path: str | Path, cache_dir: str | Path | None) -> Path:
    """The cached int8-weight IR of the head export ``onnx_path``, compressed on first use.

    Raises:
        ValueError: nncf is not installed.
    """
    try:
        import nncf  # noqa: F401 - checked here for a clear message
    except ImportError as err:
        raise ValueError("head_precision int8 on openvino needs nncf "
                         "(pip install -r requirements-cpu.txt)") from err
    path = head_int8_path(onnx_path, cache_dir)
    return cached_ir(path, lambda: compress_head(onnx_path, path), "int8 head")


__all__ = ["HEAD_INT8_VERSION", "compress_head", "head_int8_model", "head_int8_path"]
