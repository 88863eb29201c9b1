"""Post-training int8 quantisation of the backbone export with NNCF, cached on disk (DESIGN §3).

``int8_model(onnx_path, cache_dir, shape)`` returns an OpenVINO IR (``.xml`` + ``.bin``) of the
ONNX graph (clip graph ``x (1, 3, T, H, W)`` or the causal step graph ``frame (1, 3, H, W)`` with
its state inputs) in which NNCF has inserted int8 quantise/dequantise pairs on the convolutions
(``PERFORMANCE`` preset: symmetric int8 weights and activations), calibrated on synthetic clips:

- clips are synthetic camera-like scenes (:mod:`glimpse_ros.runtime.calibration`: a moving stick
  figure in front of a textured background), preprocessed as the Recognizer does; seeds are
  fixed, so calibration (and the quantised model) is deterministic;
- the step graph is calibrated on the states it meets in use: the fp32 step engine runs through
  the same clips frame by frame and every ``(frame, fresh, state)`` feed it sees is a sample.

``mixed=True`` (precision ``int8_mixed``) also leaves the high-resolution layers in float
(:func:`high_resolution_ops`: the convolutions and adds of the stem and layer1, whose outputs are
at 1/4 of the frame or finer), which the engine then runs in bf16; only the input of the first
int8 convolution after them is quantised. The int8 error is spread over the network rather
than concentrated in one layer, and the demo model's glimpses amplify it; keeping the first
stages out was the cheapest split that kept its top-1 agreement with fp32 at 98 % or above on
three sets of held-out videos (docs/measurements.md).

The IR is written next to the ONNX exports, ``<cache>/onnx/int8[m]-<sha256(ONNX)[:24]>-<shape>-
nncf<version>-v<INT8_VERSION>.xml`` (``int8m`` for mixed), keyed by the ONNX file's hash; a
damaged file is rebuilt.
``nncf`` is imported only here, on first use (it is an optional, heavy import).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from glimpse_ros.runtime.calibration import synthetic_clips
from glimpse_ros.runtime.ir_files import cached_ir, save_ir
from glimpse_ros.runtime.model_files import cache_root, file_sha256

LOG = logging.getLogger("glimpse_ros.runtime")

# Bump when calibration or quantisation settings change, so cached models are not reused.
# 2: the step's state arithmetic left in float (state_ops); 3: found from the state inputs and
# outputs (step export 4 has no splits); 4: int8_mixed leaves layer1's adds in float too.
INT8_VERSION = 4
CALIBRATION_SEED = 7031
CALIBRATION_CLIPS = 12


def step_feeds(onnx_path: Path, clips: list[np.ndarray], threads: int) -> list[dict]:
    """Feeds ``{frame, fresh, state_in_i}`` that the fp32 step graph meets on ``clips``."""
    import openvino as ov

    from glimpse_ros.runtime.step_graph import graph_state_shapes, step_inputs
    from glimpse_ros.runtime.openvino_engine import OpenVinoStepEngine

    b, _, _, h, w = clips[0].shape
    engine = OpenVinoStepEngine(onnx_path, threads=threads, frame_shape=(b, 3, h, w))
    dims = [[d.get_length() if d.is_static else None for d in i.get_partial_shape()]
            for i in ov.Core().read_model(str(onnx_path)).inputs[2:]]
    shapes = graph_state_shapes(dims, b)
    feeds = []
    for clip in clips:
        state = None
        for t in range(clip.shape[2]):
            frame = np.ascontiguousarray(clip[:, :, t])  # (B, 3, H, W)
            feeds.append({k: v.copy() for k, v in step_inputs(frame, state, shapes).items()})
            _, _, state = engine.step(frame, state)
    return feeds


PASS_THROUGH = ("Select", "Split", "VariadicSplit")  # what lies between a state and its adds


def state_ops(model: Any) -> list[str]:
    """Names of the step graph's state arithmetic, which int8 quantisation must leave in float.

    The causal step keeps partial sums of each temporal conv's taps
    (``TimePaddedConv3d.step``): each tap's conv output is added to a stored partial sum (a state
    input, or the fresh-sequence fill chosen with ``Where``), and the fill itself sums taps.
    Quantising the inputs of those adds rounds the running sums every frame (top-1 agreement with
    fp32 on the demo model 97.0 %, against 98.8 % with them left in float); leaving every
    ``Add`` in float instead also un-quantises the residual adds (12 % slower step).

    Returns:
        Friendly names of the ``Select`` (ONNX ``Where``) ops and of the ``Add`` ops that read a
        state input, a ``Select`` or a split (step export 3 split the state and the taps; bundles
        may still carry it), feed a ``Select``, or produce a state output.
    """
    def state_input(node: Any) -> bool:
        return node.get_type_name() == "Parameter" and any(
            n.startswith("state_in_") for n in node.output(0).get_names())

    names = []
    for op in model.get_ops():
        kind = op.get_type_name()
        if kind == "Select":
            names.append(op.get_friendly_name())
        elif kind == "Add":
            sources = [i.get_source_output().get_node() for i in op.inputs()]
            targets = [t.get_node() for t in op.output(0).get_target_inputs()]
            if (any(state_input(n) or n.get_type_name() in PASS_THROUGH for n in sources)
                    or any(t.get_type_name() == "Select" for t in targets)
                    or any(n.startswith("state_out_") for n in op.output(0).get_names())):
                names.append(op.get_friendly_name())
    return names


# Convolutions and adds whose output is at most this many times coarser than the frame stay in
# float in the mixed model: the stem (1/2), layer1 (1/4) and layer2's first 1x1 reduction (1/4).
HIGH_RESOLUTION_STRIDE = 4


def high_resolution_ops(model: Any) -> list[str]:
    """Names of the convolutions and adds with output at 1/4 of the frame's width or finer.

    The adds are the residual and bias adds of those layers: left out, NNCF would still round
    the residual adds' inputs to int8 inside layer1. Works on the clip graph (5D, width last)
    and the step graph (4D); the frame is the first input (``x`` or ``frame``).
    """
    width = model.inputs[0].get_partial_shape()[-1].get_length()
    limit = math.log2(HIGH_RESOLUTION_STRIDE)
    names = []
    for op in model.get_ops():
        if op.get_type_name() in ("Convolution", "Add"):
            out = op.get_output_partial_shape(0)[-1].get_length()
            # The stride as the nearest power of two (odd sizes round: 100 / 13 is stride 8).
            if round(math.log2(width / out)) <= limit:
                names.append(op.get_friendly_name())
    return names


def int8_path(onnx_path: str | Path, cache_dir: str | Path | None,
              shape: tuple[int, ...], mixed: bool = False) -> Path:
    """Where the int8 (or, ``mixed``, int8_mixed) IR of ``onnx_path`` for ``shape`` is cached."""
    import nncf

    digest = file_sha256(onnx_path)[:24]
    dims = "x".join(str(int(d)) for d in shape)
    kind = "int8m" if mixed else "int8"
    return (cache_root(cache_dir) / "onnx"
            / f"{kind}-{digest}-{dims}-nncf{nncf.__version__}-v{INT8_VERSION}.xml")


def quantize(onnx_path: str | Path, shape: tuple[int, ...], out: str | Path,
             threads: int = 1, clips: int = CALIBRATION_CLIPS, mixed: bool = False) -> Path:
    """Quantise ``onnx_path`` reshaped to the static input ``shape``; write the IR to ``out``.

    Args:
        onnx_path: clip export (``shape`` = ``(B, 3, T, H, W)``) or causal step export
            (``shape`` = ``(B, 3, H, W)``; calibrated on 8-frame sequences).
        shape: input shape to compile for (the Recognizer's).
        out: ``.xml`` path; the ``.bin`` goes beside it. Written atomically (xml last).
        threads: CPU threads for the calibration runs.
        clips: number of synthetic calibration clips.
        mixed: also leave :func:`high_resolution_ops` in float (precision int8_mixed).
    """
    import nncf
    import openvino as ov

    from glimpse_ros.runtime.step_graph import FRAME

    core = ov.Core()
    model = core.read_model(str(onnx_path))
    step = model.inputs[0].get_any_name() == FRAME
    if step:
        if len(shape) != 4:
            raise ValueError(f"a step graph takes a frame (B, 3, H, W), got shape {shape}")
        data = step_feeds(Path(onnx_path), synthetic_clips(clips, 8, shape[2], CALIBRATION_SEED),
                          threads)
        model.reshape({p: ov.PartialShape(list(data[0][p.get_any_name()].shape))
                       for p in model.inputs})
    else:
        if len(shape) != 5:
            raise ValueError(f"a clip graph takes (B, 3, T, H, W), got shape {shape}")
        data = synthetic_clips(clips, shape[2], shape[3], CALIBRATION_SEED)
        model.reshape({model.inputs[0]: ov.PartialShape(list(shape))})
    nncf.set_log_level(logging.WARNING)
    LOG.info("int8: calibrating %s on %d synthetic %s (NNCF %s)", Path(onnx_path).name,
             len(data), "frames" if step else "clips", nncf.__version__)
    # The step's partial sums stay in float (state_ops); the clip graph has none.
    names = (state_ops(model) if step else []) + (high_resolution_ops(model) if mixed else [])
    ignored = nncf.IgnoredScope(names=names, validate=False) if names else None
    quantized = nncf.quantize(model, nncf.Dataset(data), subset_size=len(data),
                              preset=nncf.QuantizationPreset.PERFORMANCE, ignored_scope=ignored)
    out = save_ir(quantized, out)
    LOG.info("int8: wrote %s", out)
    return out


def int8_model(onnx_path: str | Path, cache_dir: str | Path | None, shape: tuple[int, ...],
               threads: int = 1, mixed: bool = False) -> Path:
    """The cached int8 (``mixed``: int8_mixed) IR of ``onnx_path`` for ``shape``, made once."""
    try:
        import nncf  # noqa: F401 - checked here for a clear message
    except ImportError as err:
        raise ValueError("precision int8 needs nncf (pip install -r requirements-cpu.txt)"
                         ) from err
    path = int8_path(onnx_path, cache_dir, shape, mixed)
    return cached_ir(path, lambda: quantize(onnx_path, shape, path, threads, mixed=mixed),
                     "int8 model")


__all__ = ["CALIBRATION_CLIPS", "CALIBRATION_SEED", "HIGH_RESOLUTION_STRIDE", "INT8_VERSION",
           "high_resolution_ops", "int8_model", "int8_path", "quantize", "step_feeds"]
