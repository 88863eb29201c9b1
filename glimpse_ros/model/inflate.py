"""Inflate a torchvision-format 2D ResNet state dict onto the 3D backbone (DESIGN §2).

Two modes for a 2D kernel (Cout, Cin, kh, kw) going into a 3D slot (Cout, Cin, kt, kh, kw):

- ``center``: the 2D kernel in the temporal slice of the current frame, zeros elsewhere: the
  middle slice for symmetric convs, the last one for causal convs (which see ``t-2, t-1, t``).
  The 3D network then equals the 2D network applied frame by frame, for any video.
- ``mean``: the kernel repeated over kt and divided by kt (I3D). The 3D network then equals the
  2D network on a static video (exactly so at every frame, thanks to the replicated temporal
  padding of :class:`glimpse_ros.model.time_conv.TimePaddedConv3d`).

BatchNorm parameters and buffers are copied; the 2D classifier ``fc`` is not part of the backbone
and is left out. Nothing is ever downloaded: the 2D checkpoint is a file path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

MODES = ("center", "mean")
IGNORED_PREFIXES = ("fc.",)  # the 2D ImageNet classifier has no counterpart in the backbone
WRAPPER_KEYS = ("state_dict", "model")  # common checkpoint wrappers around the state dict


@dataclass
class LoadReport:
    """What :func:`load_inflated` did."""

    path: str
    mode: str
    loaded: list[str] = field(default_factory=list)   # backbone keys taken from the file
    ignored: list[str] = field(default_factory=list)  # file keys with no backbone counterpart (fc)
    kept: list[str] = field(default_factory=list)     # backbone keys absent from the file


def _inflate_kernel(w2d: torch.Tensor, kt: int, mode: str, causal: bool) -> torch.Tensor:
    """Turn a (Cout, Cin, kh, kw) kernel into (Cout, Cin, kt, kh, kw)."""
    if mode == "center":
        w3d = w2d.new_zeros(w2d.shape[:2] + (kt,) + w2d.shape[2:])  # (Cout, Cin, kt, kh, kw)
        w3d[:, :, kt - 1 if causal else kt // 2] = w2d  # the current frame's tap
        return w3d
    return w2d.unsqueeze(2).repeat(1, 1, kt, 1, 1) / kt  # (Cout, Cin, kt, kh, kw)


def inflate_state_dict(sd2d: Mapping[str, torch.Tensor], target_state: Mapping[str, torch.Tensor],
                       mode: str = "center", causal: bool = False) -> dict[str, torch.Tensor]:
    """Map a 2D ResNet state dict onto a 3D backbone's, key to key.

    Args:
        sd2d: torchvision-format 2D ResNet state dict (``fc.*`` is ignored).
        target_state: State dict of the 3D backbone (gives the keys, shapes and dtypes).
        mode: ``"center"`` or ``"mean"`` (see the module docstring).
        causal: the backbone's temporal convs are causal (``center`` then fills the last tap).

    Returns:
        A state dict with exactly ``target_state``'s keys, shapes and dtypes.
        ``num_batches_tracked`` buffers missing from old checkpoints keep the target's value.

    Raises:
        ValueError: on an unknown mode, a key missing from ``sd2d``, an extra non-``fc`` key in
            ``sd2d``, or a shape that cannot be inflated (the message names the key and both
            shapes).
    """
    if mode not in MODES:
        raise ValueError(f"mode: {mode!r} is not one of {', '.join(MODES)}")
    out: dict[str, torch.Tensor] = {}
    for key, target in target_state.items():
        if key not in sd2d:
            if key.endswith("num_batches_tracked"):
                out[key] = target.clone()
                continue
            raise ValueError(f"{key}: missing from the 2D state dict (3D shape "
                             f"{tuple(target.shape)})")
        src = sd2d[key].detach().to(device=target.device, dtype=target.dtype)
        if target.dim() == 5 and src.dim() == 4:
            if src.shape != target.shape[:2] + target.shape[3:]:
                raise ValueError(f"{key}: 2D shape {tuple(src.shape)} does not inflate to 3D "
                                 f"shape {tuple(target.shape)}")
            out[key] = _inflate_kernel(src, target.shape[2], mode, causal)
        elif src.shape == target.shape:
            out[key] = src.clone()
        else:
            raise ValueError(f"{key}: 2D shape {tuple(src.shape)} does not match 3D shape "
                             f"{tuple(target.shape)}")
    # Checked after the shapes so that a wrong architecture is reported by its first layer.
    extra = sorted(k for k in sd2d
                   if k not in target_state and not k.startswith(IGNORED_PREFIXES))
    if extra:
        raise ValueError(f"{extra[0]}: key of the 2D state dict has no counterpart in the 3D "
                         f"backbone ({len(extra)} such keys)")
    return out


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a torchvision-format state dict (``.pth``/``.pt`` weights only, or ``.safetensors``).

    Raises:
        ValueError: on a missing file, an unknown suffix, or content that is not a tensor mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors.torch import load_file
        data: object = load_file(str(path), device="cpu")
    elif suffix in (".pth", ".pt"):
        try:
            # weights_only=True: tensors and plain containers only, never arbitrary unpickling.
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises several types for corrupt or unsafe files
            raise ValueError(f"{path}: cannot read as a weights-only torch file: {err}") from err
    else:
        raise ValueError(f"{path}: unsupported suffix {suffix!r} (use .pth, .pt or .safetensors)")
    for wrapper in WRAPPER_KEYS:
        if isinstance(data, Mapping) and isinstance(data.get(wrapper), Mapping):
            data = data[wrapper]
    if not isinstance(data, Mapping) or not all(isinstance(v, torch.Tensor)
                                                for v in data.values()):
        raise ValueError(f"{path}: not a state dict of tensors")
    # DataParallel / DDP checkpoints prefix every key with "module.".
    return {k.removeprefix("module."): v for k, v in data.items()}


def load_inflated(backbone: nn.Module, path: str | Path, mode: str = "center") -> LoadReport:
    """Load a 2D ResNet checkpoint file into ``backbone`` (an InflatedResNet), inflating kernels.

    Args:
        backbone: The 3D backbone, modified in place.
        path: torchvision-format 2D checkpoint (``.pth``, ``.pt`` or ``.safetensors``).
        mode: ``"center"`` or ``"mean"``.

    Returns:
        A :class:`LoadReport` listing the loaded, ignored and kept keys.

    Raises:
        ValueError: as :func:`read_state_dict` and :func:`inflate_state_dict`, prefixed by the
            path.
    """
    sd2d = read_state_dict(path)
    target = backbone.state_dict()
    try:
        inflated = inflate_state_dict(sd2d, target, mode,
                                      causal=bool(getattr(backbone, "causal", False)))
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err
    backbone.load_state_dict(inflated, strict=True)
    return LoadReport(path=str(path), mode=mode,
                      loaded=[k for k in target if k in sd2d],
                      ignored=sorted(k for k in sd2d if k not in target),
                      kept=[k for k in target if k not in sd2d])


__all__ = ["inflate_state_dict", "load_inflated", "read_state_dict", "LoadReport", "MODES"]
