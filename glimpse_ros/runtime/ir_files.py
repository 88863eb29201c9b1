"""OpenVINO IR files (``.xml`` + ``.bin``) the runtime derives from ONNX exports and caches.

Shared by the int8 backbone (:mod:`glimpse_ros.runtime.int8`) and the int8-weight head
(:mod:`glimpse_ros.runtime.head_int8`): both write an IR once, atomically, and reuse it while it
loads, rebuilding a damaged one.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

LOG = logging.getLogger("glimpse_ros.runtime")


def save_ir(model: Any, out: str | Path) -> Path:
    """Write the OpenVINO ``model`` to ``out`` (``.xml``, ``.bin`` beside it), atomically.

    The ``.bin`` is moved into place first, the ``.xml`` last: its presence means complete.
    """
    import openvino as ov

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".ir-", dir=out.parent))
    try:
        ov.save_model(model, str(tmp / "model.xml"), compress_to_fp16=False)
        os.replace(tmp / "model.bin", out.with_suffix(".bin"))
        os.replace(tmp / "model.xml", out)
    finally:
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()
    return out


def cached_ir(path: Path, build: Callable[[], Path], what: str) -> Path:
    """``path`` when it holds an IR that OpenVINO reads, else ``build()`` (which writes it).

    Args:
        path: the cached ``.xml``.
        build: writes the IR to ``path`` and returns it.
        what: name for the log lines ("int8 model", "int8 head").
    """
    if path.is_file() and path.with_suffix(".bin").is_file():
        try:
            import openvino as ov

            ov.Core().read_model(str(path))
        except Exception as err:  # noqa: BLE001 - openvino raises RuntimeError subclasses
            LOG.warning("cached %s %s is unusable (%s): building it again", what, path,
                        str(err).splitlines()[0][:200] if str(err) else type(err).__name__)
        else:
            LOG.info("using cached %s %s", what, path)
            return path
    return build()


__all__ = ["cached_ir", "save_ir"]
