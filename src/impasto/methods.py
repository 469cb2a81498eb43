"""Stylization methods behind one signature, for the CLI, the web UI and batch runs.

``METHODS`` is a plain dict: ``gatys`` (pixel optimization), ``fast`` (a trained feed-forward network,
one or several styles). Each takes a content tensor and returns ``(image, info)``.
"""

from __future__ import annotations

import functools
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from impasto import color
from impasto.device import autocast, inference_copy, memory_format, pick_device, pick_dtype, precision_name
from impasto.errors import InputError
from impasto.io import resize_long
from impasto.models.files import model_file


@functools.lru_cache(maxsize=4)
def _cached_fast_model(path: str, mtime: float) -> tuple[Any, dict[str, Any]]:
    from impasto.train.fast_style import load_model

    del mtime  # part of the cache key: a retrained file is reloaded
    return load_model(path)


def load_fast_model(path: str | Path) -> tuple[Any, dict[str, Any]]:
    p = model_file(path)
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


@functools.lru_cache(maxsize=2)
def _cached_adain(path: str, mtime: float) -> tuple[Any, dict[str, Any]]:
    from impasto.train.adain import load_decoder

    del mtime
    return load_decoder(path)


@functools.lru_cache(maxsize=2)
def _adain_encoder(weights_name: str) -> Any:
    from impasto.features import Encoder, Weights
    from impasto.models.adain import ENCODER_LAYERS

    return Encoder(ENCODER_LAYERS, Weights.from_name(weights_name))


_STYLE_FEATURES: OrderedDict[tuple[Any, ...], torch.Tensor] = OrderedDict()
_STYLE_LOCK = threading.Lock()
STYLE_CACHE_SIZE = 8


def style_features(enc: Any, style: torch.Tensor, style_size: int, dev: torch.device) -> torch.Tensor:
    """The style image's relu4_1 features, remembered by content (a few recent styles): a video or a
    folder batch with one painting encodes it once, not once per frame (0.13 s each at 512 px here)."""
    from impasto.models.adain import BOTTLENECK

    small = resize_long(style, style_size)  # what the encoder sees; hashing it is cheaper than the original
    pixels = small.detach().float().cpu().contiguous()
    digest = hashlib.blake2b(pixels.numpy().tobytes(), digest_size=16).hexdigest()
    weights = next(enc.parameters())
    key = (id(enc), str(weights.dtype), str(dev), tuple(pixels.shape), digest)
    with _STYLE_LOCK:
        if key in _STYLE_FEATURES:
            _STYLE_FEATURES.move_to_end(key)
            return _STYLE_FEATURES[key]
    feats = enc(small.to(dev), [BOTTLENECK])[BOTTLENECK]
    with _STYLE_LOCK:
        _STYLE_FEATURES[key] = feats
        while len(_STYLE_FEATURES) > STYLE_CACHE_SIZE:
            _STYLE_FEATURES.popitem(last=False)
    return feats


def clear_style_cache() -> None:
    with _STYLE_LOCK:
        _STYLE_FEATURES.clear()


def load_adain_model(path: str | Path | None) -> tuple[Any, dict[str, Any], Path]:
    if path is None:
        from impasto import bundled

        path = bundled.model("adain")
    p = model_file(path)
    if not p.is_file():
        raise InputError(f"{p}: no such model file")
    dec, meta = _cached_adain(str(p.resolve()), p.stat().st_mtime)
    return dec, meta, p


def stylize_adain(content: torch.Tensor, styles: list[torch.Tensor], *, model: str | Path | None = None,
                  style_weights: list[float] | None = None, strength: float = 1.0,
                  preserve_color: str | None = None, mask: torch.Tensor | None = None, style_size: int = 512,
                  device: str = "auto", precision: str = "auto", **_: Any) -> tuple[torch.Tensor, dict[str, Any]]:
    """AdaIN at the content's full resolution: any style image, no retraining; ``strength`` interpolates
    between the content's own features (0) and the AdaIN target (1); ``mask`` puts styles[0] where it
    is white and styles[1] where it is black."""
    from impasto.models.adain import BOTTLENECK, adain, masked_adain

    if not 0 <= strength <= 1:
        raise InputError(f"--strength must be between 0 and 1, got {strength}")
    if not styles:
        raise InputError("--method adain needs at least one --style image")
    weights = list(style_weights) if style_weights is not None else [1.0] * len(styles)
    if len(weights) != len(styles) or sum(weights) <= 0 or min(weights) < 0:
        raise InputError("--style-weights must give one weight >= 0 per style, not all zero")
    if mask is not None and len(styles) != 2:
        raise InputError(f"--mask needs exactly two styles (foreground, background), got {len(styles)}")
    if mask is not None and mask.shape[-2:] != content.shape[-2:]:
        raise InputError(f"--mask is {mask.shape[-1]}x{mask.shape[-2]} but the content is "
                         f"{content.shape[-1]}x{content.shape[-2]}; they must match")
    dec, meta, path = load_adain_model(model)
    enc = _adain_encoder(meta.get("backbone", "vgg16-keras-offline"))
    t0 = time.perf_counter()
    dev = pick_device(device)
    dtype = pick_dtype(dev, precision)
    mf = memory_format(dev, dtype)
    enc, dec = inference_copy(enc, dev, dtype), inference_copy(dec, dev, dtype)
    h, w = content.shape[-2:]
    padded = torch.nn.functional.pad(content, (0, (8 - w % 8) % 8, 0, (8 - h % 8) % 8), mode="reflect")
    if mask is not None:
        mask = torch.nn.functional.pad(mask, (0, (8 - w % 8) % 8, 0, (8 - h % 8) % 8), mode="reflect")
    with torch.inference_mode(), autocast(dev, dtype):
        fc = enc(padded.to(dev).contiguous(memory_format=mf), [BOTTLENECK])[BOTTLENECK]
        fs = [style_features(enc, s, style_size, dev) for s in styles]
        if mask is not None:
            t = masked_adain(fc, fs, mask.to(dev)[:, :1])
        else:
            t = sum(w / sum(weights) * adain(fc, f) for w, f in zip(weights, fs, strict=True))
        t = strength * t + (1 - strength) * fc
        y = dec(t)
    y = y.float().cpu()[..., :h, :w].clamp(0, 1)
    y = keep_colors(y, content, preserve_color).clamp(0, 1)
    info = {"method": "adain", "model": str(path), "strength": strength, "style_weights": weights,
            "masked": mask is not None, "seconds": time.perf_counter() - t0, "device": str(dev),
            "precision": precision_name(dtype), "size": list(y.shape[-2:])}
    return y, info


def stylize_gatys(content: torch.Tensor, styles: list[torch.Tensor], **kwargs: Any
                  ) -> tuple[torch.Tensor, dict[str, Any]]:
    from impasto.optimize import stylize

    image, result = stylize(content, styles, **kwargs)
    return image, {"method": "gatys", **result.as_dict()}


METHODS: dict[str, Callable[..., tuple[torch.Tensor, dict[str, Any]]]] = {
    "gatys": stylize_gatys,
    "fast": stylize_fast,
    "adain": stylize_adain,
}
