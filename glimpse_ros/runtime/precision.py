"""Backbone precisions: which engine runs which, and whether this CPU runs it natively (DESIGN §3).

- ``fp32``: every engine; the explicit default. OpenVINO is told ``f32`` outright: on a CPU with
  native bf16 its CPU plugin would otherwise pick bf16 by itself.
- ``fp16``: GPU only (TensorRT, or torch on CUDA). ``auto`` with fp16 on a CPU machine falls back
  to fp32 and logs it, so one configuration file serves GPU and CPU machines.
- ``bf16``: OpenVINO only, and only where the CPU has bf16 arithmetic (``avx512_bf16`` or
  ``amx_bf16``, and the CPU plugin reports BF16). Elsewhere OpenVINO would emulate it, slower than
  fp32: we refuse with a message instead.
- ``int8``: OpenVINO running a backbone quantised after training with NNCF
  (:mod:`glimpse_ros.runtime.int8`); needs a CPU for which the plugin reports INT8.
- ``int8_mixed``: the same with the high-resolution layers (the stem and layer1) and the
  other float layers in bf16: needs native int8 and native bf16. On the demo model it agrees
  with fp32 where all-int8 falls just short (measured in docs/measurements.md).

bf16 and int8 approximate the fp32 model; ``make bench`` reports their deviation from fp32.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

LOG = logging.getLogger("glimpse_ros.runtime")

PRECISIONS = ("fp32", "fp16", "bf16", "int8", "int8_mixed")
INT8_PRECISIONS = ("int8", "int8_mixed")  # run a quantised IR (glimpse_ros.runtime.int8)
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# OpenVINO INFERENCE_PRECISION_HINT per precision. An int8 model's layers that stay in floating
# point run in f32 (bf16 there would add a second approximation on top of the quantisation);
# int8_mixed runs its float stages in bf16 by design.
OPENVINO_HINTS = {"fp32": "f32", "bf16": "bf16", "int8": "f32", "int8_mixed": "bf16"}


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """Feature flags of the first CPU in ``/proc/cpuinfo`` (or of ``cpuinfo``); empty if none."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:  # pragma: no cover - non-Linux
            return set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


@lru_cache(maxsize=1)
def openvino_capabilities() -> tuple[str, ...]:
    """The OpenVINO CPU plugin's OPTIMIZATION_CAPABILITIES (empty when openvino is missing)."""
    try:
        import openvino as ov
    except ImportError:
        return ()
    return tuple(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def native_bf16(flags: set[str] | None = None,
                capabilities: tuple[str, ...] | None = None) -> tuple[bool, str]:
    """Whether this CPU computes bf16 natively (a CPU flag AND OpenVINO's BF16 capability), why."""
    flags = cpu_flags() if flags is None else flags
    capabilities = openvino_capabilities() if capabilities is None else capabilities
    have = sorted(set(BF16_FLAGS) & flags)
    if not have:
        return False, f"the CPU has no native bf16 ({' or '.join(BF16_FLAGS)} missing)"
    if "BF16" not in capabilities:
        return False, (f"the CPU has {', '.join(have)} but OpenVINO's CPU plugin does not report "
                       f"BF16 (capabilities: {', '.join(capabilities) or 'none'})")
    return True, f"native bf16 ({', '.join(have)})"


def native_int8(capabilities: tuple[str, ...] | None = None) -> tuple[bool, str]:
    """Whether OpenVINO's CPU plugin runs int8 kernels on this CPU, and why (not)."""
    capabilities = openvino_capabilities() if capabilities is None else capabilities
    if "INT8" not in capabilities:
        return False, (f"OpenVINO's CPU plugin does not report INT8 on this CPU (capabilities: "
                       f"{', '.join(capabilities) or 'none'})")
    vnni = sorted({"avx512_vnni", "avx_vnni", "amx_int8"} & cpu_flags())
    return True, f"int8 ({', '.join(vnni) if vnni else 'no VNNI: u8s8 multiply-add'})"


def resolve_precision(engine: str, precision: str | None, requested_auto: bool,
                      gpu: bool) -> str:
    """Check ``precision`` for the resolved ``engine`` and return the precision to run.

    Args:
        engine: the concrete engine (``torch``, ``onnxruntime``, ``openvino``, ``tensorrt``).
        precision: the requested precision; None = the engine's default (fp16 on TensorRT, else
            fp32).
        requested_auto: the engine was chosen by ``auto`` (fp16 then falls back to fp32).
        gpu: the engine runs on a CUDA GPU.

    Raises:
        ValueError: unknown precision, or one this engine / CPU cannot run natively; the message
            says what to use instead.
    """
    if precision is None:
        return "fp16" if engine == "tensorrt" else "fp32"
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp16" and not gpu:
        if not requested_auto:
            raise ValueError(f"precision fp16 needs a GPU engine; {engine} runs on the CPU here "
                             "(use fp32, or tensorrt on a CUDA machine)")
        LOG.warning("precision fp16 requested but %s runs on the CPU: using fp32", engine)
        return "fp32"
    if precision in ("bf16",) + INT8_PRECISIONS:
        if engine != "openvino":
            raise ValueError(f"precision {precision} is implemented by the openvino engine only; "
                             f"the backend is {engine} (use backend openvino, or fp32)")
        ok, why = native_support(precision)
        if not ok:  # int8 is the way out of int8_mixed only where int8 itself is native
            hint = ", or int8" if precision == "int8_mixed" and native_int8()[0] else ""
            raise ValueError(f"precision {precision} refused: {why}; it would be emulated, "
                             f"slower than fp32 (use fp32{hint})")
        LOG.info("precision %s: %s", precision, why)
    return precision


def native_support(precision: str) -> tuple[bool, str]:
    """Whether OpenVINO runs ``precision`` (bf16, int8, int8_mixed) natively here, and why (not).

    int8_mixed needs both: int8 for its quantised convolutions, bf16 for the rest.
    """
    checks = {"bf16": (native_bf16,), "int8": (native_int8,),
              "int8_mixed": (native_int8, native_bf16)}[precision]
    whys = []
    for check in checks:
        ok, why = check()
        if not ok:
            return False, why
        whys.append(why)
    return True, "; ".join(whys)


__all__ = ["BF16_FLAGS", "INT8_PRECISIONS", "OPENVINO_HINTS", "PRECISIONS", "cpu_flags",
           "native_bf16", "native_int8", "native_support", "openvino_capabilities",
           "resolve_precision"]
