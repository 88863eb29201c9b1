"""Which kernels the OpenVINO CPU plugin compiled: a silent fallback must show in benchmarks.

The plugin picks one implementation per layer of the compiled graph (``primitiveType`` in the
runtime model's ``rt_info``: ``brgconv_avx512_amx_bf16``, ``jit_avx2_f32``, ``ref_f32``...). A
precision hint the CPU cannot honour, or a shape no optimised kernel covers, does not fail: the
layer quietly runs another precision or a reference kernel. :func:`kernel_summary` lists the
implementations by layer type and flags the two cases, so ``bench.json`` shows them next to the
timings.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

# Layers without compute of their own (constants, graph inputs/outputs, views).
NO_COMPUTE = frozenset({"Const", "Input", "Output", "Reshape", "Squeeze", "Unsqueeze"})
# The runtime precision the convolutions should run in, per requested precision. int8 models
# keep a few float convolutions (NNCF leaves the first layer's input in float), so int8 counts
# the quantised share rather than flagging every float convolution; int8_mixed's float
# convolutions must run in bf16 (an f32 one is a fallback).
CONV_PRECISION = {"fp32": ("f32",), "bf16": ("bf16",), "int8": ("u8", "i8"),
                  "int8_mixed": ("u8", "i8", "bf16")}


def _text(value: Any) -> str:
    """An ``rt_info`` value (``OVAny``) as text."""
    return value.astype(str) if hasattr(value, "astype") else str(value)


def runtime_layers(compiled: Any) -> list[tuple[str, str, str]]:
    """``(layer type, runtime precision, primitive type)`` of every compute layer, in order."""
    layers = []
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        layer = _text(info["layerType"])
        if layer in NO_COMPUTE:
            continue
        layers.append((layer, _text(info["runtimePrecision"]).lower(),
                       _text(info["primitiveType"])))
    return layers


def summarise_layers(layers: list[tuple[str, str, str]], precision: str) -> dict:
    """Counts of ``layer:primitive`` and the convolutions' precision against ``precision``.

    Args:
        layers: :func:`runtime_layers` output.
        precision: the precision the engine was asked for (``fp32``, ``bf16``, ``int8``).

    Returns:
        ``kernels`` (``"Convolution:brgconv_avx512_bf16" -> count``), ``reference_kernels``
        (the ``ref_*`` ones, by layer), ``convolutions`` (count), ``convolutions_in_precision``
        (those whose runtime precision is the requested one), ``convolution_fallback``
        (``"Convolution:<precision>" -> count`` of the others) and ``convolution_precisions``
        (runtime precision -> count; for int8_mixed the int8 share is checked against the
        quantised convolutions, since bf16 is in its precision for the stem and layer1 only).
    """
    if precision not in CONV_PRECISION:
        raise ValueError(f"precision must be one of {', '.join(CONV_PRECISION)}, "
                         f"got {precision!r}")
    kernels = Counter(f"{layer}:{prim}" for layer, _, prim in layers)
    reference = Counter(f"{layer}:{prim}" for layer, _, prim in layers if prim.startswith("ref"))
    convs = [(prec, prim) for layer, prec, prim in layers if layer == "Convolution"]
    wanted = CONV_PRECISION[precision]
    in_precision = sum(prec in wanted for prec, _ in convs)
    fallback = Counter(f"Convolution:{prec}" for prec, _ in convs if prec not in wanted)
    return {"kernels": dict(sorted(kernels.items())), "reference_kernels": dict(reference),
            "convolutions": len(convs), "convolutions_in_precision": in_precision,
            "convolution_fallback": dict(fallback),
            "convolution_precisions": dict(sorted(Counter(p for p, _ in convs).items()))}


def kernel_summary(compiled: Any, precision: str) -> dict:
    """:func:`summarise_layers` of an ``openvino.CompiledModel`` asked for ``precision``."""
    return summarise_layers(runtime_layers(compiled), precision)
