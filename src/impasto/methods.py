"""Stylization methods behind one signature, for the CLI, the web UI and batch runs.

``METHODS`` is a plain dict: ``gatys`` (pixel optimization), ``fast`` (a trained feed-forward network,
one or several styles). Each takes a content tensor and returns ``(image, info)``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from impasto import color
from impasto.device import autocast, memory_format, pick_device, pick_dtype, precision_name
from impasto.errors import InputError
from impasto.io import resize_long


@functools.lru_cache(maxsize=4)
def _cached_fast_model(path: str, mtime: float) -> tuple[Any, dict[str, Any]]:
    from impasto.train.fast_style import load_model

    del mtime  # part of the cache key: a retrained file is reloaded
    return load_model(path)


def load_fast_model(path: str | Path) -> tuple[Any, dict[str, Any]]:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such model file")
    return _cached_fast_model(str(p.resolve()), p.stat().st_mtime)


def parse_style_mix(text: str, n_styles: int) -> torch.Tensor:
    """'0:0.5,2:0.5' -> a weight vector over the model's styles (normalized to sum 1)."""
    mix = torch.zeros(n_styles)
    try:
        for part in text.split(","):
            index, weight = part.split(":")
            i, w = int(index), float(weight)
            if not 0 <= i < n_styles or w < 0:
                raise ValueError
            mix[i] += w
    except ValueError as exc:
        raise InputError(f"--style-mix {text!r}: expected INDEX:WEIGHT pairs with 0 <= INDEX < {n_styles}, "
                         "weights >= 0") from exc
    if mix.sum() <= 0:
        raise InputError("--style-mix weights must not all be zero")
    return mix / mix.sum()


def keep_colors(stylized: torch.Tensor, content: torch.Tensor, mode: str | None) -> torch.Tensor:
    """Post-hoc colour preservation for feed-forward methods."""
    if not mode:
        return stylized
    if mode == "luminance":
        return color.combine_luminance(stylized, content)
    if mode == "histogram":
        return color.match_color_histogram(stylized, content)
    raise InputError(f"unknown --preserve-color {mode!r} (use luminance or histogram)")


def stylize_fast(content: torch.Tensor, model: str | Path, *, style_index: int | None = None,
                 style_mix: str | None = None, strength: float = 1.0, preserve_color: str | None = None,
                 max_size: int | None = None, device: str = "auto", precision: str = "auto",
                 **_: Any) -> tuple[torch.Tensor, dict[str, Any]]:
    """Run a trained fast-style network on ``content`` (any size; ``max_size`` caps the long side)."""
    if not 0 <= strength <= 1:
        raise InputError(f"--strength must be between 0 and 1, got {strength}")
    net, meta = load_fast_model(model)
    n = int(meta["n_styles"])
    if style_mix is not None and style_index is not None:
        raise InputError("give --style-index or --style-mix, not both")
    if style_mix is not None:
        style: int | torch.Tensor = parse_style_mix(style_mix, n)
    else:
        style = 0 if style_index is None else style_index
        if not 0 <= style < n:
            raise InputError(f"--style-index {style} out of range: the model has {n} style(s) {meta.get('styles')}")
    t0 = time.perf_counter()
    dev = pick_device(device)
    dtype = pick_dtype(dev, precision)
    x = content if max_size is None or max(content.shape[-2:]) <= max_size else resize_long(content, max_size)
    net = net.to(dev, memory_format=memory_format(dev, dtype))
    with torch.inference_mode(), autocast(dev, dtype):
        y = net(x.to(dev).contiguous(memory_format=memory_format(dev, dtype)), style)
    y = y.float().cpu().contiguous()
    if strength < 1:
        y = strength * y + (1 - strength) * x
    y = keep_colors(y, x, preserve_color).clamp(0, 1)
    info = {"method": "fast", "model": str(model), "styles": meta.get("styles"), "style": style if isinstance(
        style, int) else style.tolist(), "strength": strength, "seconds": time.perf_counter() - t0,
        "device": str(dev), "precision": precision_name(dtype), "size": list(y.shape[-2:])}
    return y, info


def stylize_gatys(content: torch.Tensor, styles: list[torch.Tensor], **kwargs: Any
                  ) -> tuple[torch.Tensor, dict[str, Any]]:
    from impasto.optimize import stylize

    image, result = stylize(content, styles, **kwargs)
    return image, {"method": "gatys", **result.as_dict()}


METHODS: dict[str, Callable[..., tuple[torch.Tensor, dict[str, Any]]]] = {
    "gatys": stylize_gatys,
    "fast": stylize_fast,
}
