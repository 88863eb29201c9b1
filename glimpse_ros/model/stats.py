"""Parameter counts and multiply-accumulates of the model: ``python -m glimpse_ros.model.stats``.

MACs are counted with forward hooks on every Conv2d/Conv3d, Linear and GRUCell while one clip
(B = 1) runs through the model, and attributed to the part that owns the layer (backbone, head,
pose, global_fc). A second total, ``gmacs_all_ops``, comes from torch's FlopCounterMode
(FLOPs / 2) and also covers functional matrix products (e.g. the memory's learned distance) that
have no layer to hook. Element-wise work, pooling and ``grid_sample`` are in neither count.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from glimpse_ros.config import ModelConfig
from glimpse_ros.config_loader import to_dict
from glimpse_ros.model.backbone import InflatedResNet

# Attribute name on GlimpseClouds -> part name in the report.
PARTS = {"backbone": "backbone", "head": "head", "pose_head": "pose", "global_fc": "global_fc"}


def layer_macs(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> int:
    """Multiply-accumulates of one call of a Conv, Linear or GRUCell layer (0 for other layers)."""
    if isinstance(module, (nn.Conv2d, nn.Conv3d)):
        per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
        return output.numel() * per_output
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    if isinstance(module, nn.GRUCell):
        rows = inputs[0].numel() // module.input_size  # batch size
        # Three gates, each an input and a hidden matrix product.
        return rows * 3 * module.hidden_size * (module.input_size + module.hidden_size)
    return 0


def count_params(module: nn.Module) -> int:
    """Number of parameters (buffers excluded)."""
    return sum(p.numel() for p in module.parameters())


def build(cfg: ModelConfig) -> tuple[nn.Module, dict[str, nn.Module]]:
    """Build the full model (or the backbone alone when the model module is unavailable)."""
    if importlib.util.find_spec("glimpse_ros.model.glimpse_clouds") is None:
        backbone = InflatedResNet(cfg)
        return backbone, {"backbone": backbone}
    from glimpse_ros.model.glimpse_clouds import GlimpseClouds
    model = GlimpseClouds(cfg)
    return model, {name: getattr(model, attr) for attr, name in PARTS.items()
                   if isinstance(getattr(model, attr, None), nn.Module)}


@torch.no_grad()
def measure(cfg: ModelConfig, frames: int | None = None, size: int | None = None
            ) -> dict[str, Any]:
    """Count parameters and MACs of one clip (1, 3, frames, size, size).

    Args:
        cfg: Model configuration.
        frames: Clip length; defaults to ``cfg.frames``.
        size: Square input size; defaults to ``cfg.crop_size``.

    Returns:
        A JSON-serialisable dict: input shape, ``params`` and ``gmacs`` per part (plus ``total``),
        ``gmacs_all_ops`` and the config.
    """
    frames = cfg.frames if frames is None else frames
    size = cfg.crop_size if size is None else size
    model, parts = build(cfg)
    model.eval()
    macs = {name: 0 for name in parts}
    handles = []
    for name, part in parts.items():
        for layer in part.modules():
            if isinstance(layer, (nn.Conv2d, nn.Conv3d, nn.Linear, nn.GRUCell)):
                def hook(m: nn.Module, i: tuple[Any, ...], o: Any, name: str = name) -> None:
                    macs[name] += layer_macs(m, i, o)
                handles.append(layer.register_forward_hook(hook))
    x = torch.randn(1, 3, frames, size, size, generator=torch.Generator().manual_seed(0))
    counter = FlopCounterMode(display=False)
    try:
        with counter:
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    params = {name: count_params(part) for name, part in parts.items()}
    params["total"] = count_params(model)
    gmacs = {name: v / 1e9 for name, v in macs.items()}
    gmacs["total"] = sum(macs.values()) / 1e9
    return {"input": [1, 3, frames, size, size], "full_model": len(parts) > 1,
            "params": params, "gmacs": gmacs,
            "gmacs_all_ops": counter.get_total_flops() / 2 / 1e9, "config": to_dict(cfg)}


def format_report(name: str, stats: dict[str, Any]) -> str:
    """Human-readable table of one :func:`measure` result."""
    shape = "x".join(str(v) for v in stats["input"])
    note = "" if stats["full_model"] else " (backbone only: no glimpse_ros.model.glimpse_clouds)"
    lines = [f"{name}: input {shape}{note}", f"  {'part':<10} {'params':>14} {'GMACs':>10}"]
    for part, count in stats["params"].items():
        lines.append(f"  {part:<10} {count:>14,} {stats['gmacs'][part]:>10.3f}")
    lines.append(f"  all matmul/conv ops (FlopCounterMode): {stats['gmacs_all_ops']:.3f} GMACs")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the statistics of the default (ResNet-50) and the small configuration."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--only", choices=("default", "small"), help="measure one config only")
    parser.add_argument("--frames", type=int, default=None, help="clip length (default: config)")
    args = parser.parse_args(argv)
    configs = {"default": ModelConfig(), "small": ModelConfig.small()}
    if args.only:
        configs = {args.only: configs[args.only]}
    results = {name: measure(cfg, frames=args.frames) for name, cfg in configs.items()}
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print("\n\n".join(format_report(name, stats) for name, stats in results.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
