"""Inference of the feed-forward methods: fast (a trained network, its own paintings) and AdaIN (any
painting through a trained decoder). Each takes its options object (:mod:`impasto.options`) and returns
``(image, info)``; front ends reach them through :mod:`impasto.stylizer`, which also runs Gatys.
"""

from __future__ import annotations

import functools
import hashlib
import math
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from impasto import color
from impasto.device import autocast, inference_copy, memory_format, pick_device, pick_dtype, precision_name
from impasto.errors import InputError
from impasto.guided import guided_upsample
from impasto.io import capped_size, pad_to_min, resize, resize_long, tile_to_min
from impasto.models.files import model_file, short
from impasto.options import AdainOptions, FastOptions, style_blend
from impasto.progress import Callback

#: the smallest side each network is run at; a smaller or thinner photo is padded up to it and the output
#: cropped back, so every size runs. Fast: its 9x9 reflection padding and two stride-2 stages need more
#: than 8 pixels a side. AdaIN: VGG halves the photo three times before relu4_1, and AdaIN's statistics
#: need a few positions there (32 px: 4x4 at relu4_1).
FAST_MIN_SIDE = 16
ADAIN_MIN_SIDE = 32

@functools.lru_cache(maxsize=4)
def _cached_fast_model(path: str, mtime: float) -> tuple[Any, dict[str, Any]]:
    from impasto.models.transformer import load_model

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
            if not 0 <= i < n_styles or not 0 <= w < math.inf:  # NaN fails this too
                raise ValueError
            mix[i] += w
    except ValueError as exc:
        raise InputError(f"--style-mix {text!r}: expected INDEX:WEIGHT pairs with 0 <= INDEX < {n_styles}, "
                         "weights >= 0") from exc
    if not 0 < float(mix.sum()) < math.inf:  # all zero, or finite weights whose sum overflows
        raise InputError("--style-mix weights must not all be zero, nor sum past the largest float")
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


def model_for(options: FastOptions | AdainOptions) -> Path:
    """The model file a feed-forward run loads: the user's, or the bundled one its options name."""
    from impasto import bundled

    return Path(options.model) if options.model else bundled.model(options.BUNDLED_MODEL)


def stylize_fast(content: torch.Tensor, options: FastOptions) -> tuple[torch.Tensor, dict[str, Any]]:
    """Run a trained fast-style network on ``content`` (any size; ``options.max_size`` caps the long side)."""
    model = model_for(options)
    net, meta = load_fast_model(model)
    n = int(meta["n_styles"])
    if options.style_mix is not None:
        style: int | torch.Tensor = parse_style_mix(options.style_mix, n)
    else:
        style = 0 if options.style_index is None else options.style_index
        if not 0 <= style < n:
            raise InputError(f"--style-index {style} out of range: the model has {n} style(s) "
                             f"{short(meta.get('styles'), 200)}")
    t0 = time.perf_counter()
    dev = pick_device(options.device)
    dtype = pick_dtype(dev, options.precision)
    x = capped(content, options.max_size)
    net = net.to(dev, memory_format=memory_format(dev, dtype))
    h, w = x.shape[-2:]
    grown = pad_to_min(x, FAST_MIN_SIDE)
    with torch.inference_mode(), autocast(dev, dtype):
        y = net(grown.to(dev).contiguous(memory_format=memory_format(dev, dtype)), style)
    y = y.float().cpu()[..., :h, :w].contiguous()
    if options.strength < 1:
        y = options.strength * y + (1 - options.strength) * x
    y = keep_colors(y, x, options.preserve_color).clamp(0, 1)
    info = {"model": str(model), "styles": meta.get("styles"), "style": style if isinstance(
        style, int) else style.tolist(), "seconds": time.perf_counter() - t0,
        "device": str(dev), "precision": precision_name(dtype), "size": list(y.shape[-2:])}
    return y, info


@functools.lru_cache(maxsize=2)
def _cached_adain(path: str, mtime: float) -> tuple[Any, dict[str, Any]]:
    from impasto.models.adain import load_decoder

    del mtime
    return load_decoder(path)


@functools.lru_cache(maxsize=2)
def _adain_encoder(weights_name: str) -> Any:
    from impasto.features import Encoder, Weights
    from impasto.models.adain import ENCODER_LAYERS

    return Encoder(ENCODER_LAYERS, Weights.from_name(weights_name))


_STYLE_FEATURES: OrderedDict[tuple[Any, ...], dict[str, torch.Tensor]] = OrderedDict()
_STYLE_LOCK = threading.Lock()
STYLE_CACHE_SIZE = 8


def style_features(enc: Any, style: torch.Tensor, style_size: int, dev: torch.device, levels: tuple[str, ...],
                   layout: torch.memory_format = torch.contiguous_format) -> dict[str, torch.Tensor]:
    """The style image's features at ``levels``, remembered by content (a few recent styles): a video or
    a folder batch with one painting encodes it once, not once per frame (0.13 s each at 512 px here)."""
    # what the encoder sees (a tiny or thin painting repeated up to the size VGG needs); hashing it is
    # cheaper than hashing the original
    small = tile_to_min(resize_long(style, style_size), ADAIN_MIN_SIDE)
    pixels = small.detach().float().cpu().contiguous()
    digest = hashlib.blake2b(pixels.numpy().tobytes(), digest_size=16).hexdigest()
    weights = next(enc.parameters())
    key = (id(enc), str(weights.dtype), str(dev), tuple(pixels.shape), digest, levels, str(layout))
    with _STYLE_LOCK:
        if key in _STYLE_FEATURES:
            _STYLE_FEATURES.move_to_end(key)
            return _STYLE_FEATURES[key]
    # ``layout``: the photo's (channels-last under bf16); in NCHW the bf16 encoder's first max-pool alone
    # took 0.37 s of a 1024 px call here (0.10 s channels-last)
    feats = enc(small.to(dev).contiguous(memory_format=layout), list(levels))
    with _STYLE_LOCK:
        _STYLE_FEATURES[key] = feats
        while len(_STYLE_FEATURES) > STYLE_CACHE_SIZE:
            _STYLE_FEATURES.popitem(last=False)
    return feats


def clear_style_cache() -> None:
    with _STYLE_LOCK:
        _STYLE_FEATURES.clear()


def load_adain_model(path: str | Path) -> tuple[Any, dict[str, Any], Path]:
    p = model_file(path)
    if not p.is_file():
        raise InputError(f"{p}: no such model file")
    dec, meta = _cached_adain(str(p.resolve()), p.stat().st_mtime)
    return dec, meta, p


def match_colors(image: torch.Tensor, content: torch.Tensor, styles: list[torch.Tensor], weights: list[float],
                 strength: float) -> torch.Tensor:
    """AdaIN on the pixels: each RGB channel of ``image`` gets the mean and standard deviation of the
    paintings' (blended by ``weights``), interpolated with the photo's by ``strength``. Why: a decoder
    trained for a few thousand steps on a CPU reproduces structure and texture before it reproduces
    each painting's palette; this last, exact step makes the palette follow the painting."""
    def stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.float()  # the population std: the sample std of a 1x1 photo is NaN
        return x.mean(dim=(2, 3), keepdim=True), x.std(dim=(2, 3), keepdim=True, correction=0) + 1e-5

    total = sum(weights)
    ms = sum(w / total * stats(s)[0] for w, s in zip(weights, styles, strict=True))
    ss = sum(w / total * stats(s)[1] for w, s in zip(weights, styles, strict=True))
    mc, sc = stats(content)
    target_m, target_s = strength * ms + (1 - strength) * mc, strength * ss + (1 - strength) * sc
    my, sy = stats(image)
    return ((image - my) / sy * target_s + target_m).clamp(0, 1)  # type: ignore[operator]


def capped(image: torch.Tensor, max_size: int | None) -> torch.Tensor:
    """``image`` with its long side at most ``max_size`` (unchanged when it already is)."""
    return resize(image, capped_size(image.shape[-2], image.shape[-1], max_size))


def _pad_for_decoder(image: torch.Tensor) -> torch.Tensor:
    """Grown to ADAIN_MIN_SIDE, then reflected to a multiple of 8 (the decoder's three 2x upsamplings
    give back exactly the encoder's size); crop the output to the input's size."""
    grown = pad_to_min(image, ADAIN_MIN_SIDE)
    gh, gw = grown.shape[-2:]
    return torch.nn.functional.pad(grown, (0, (8 - gw % 8) % 8, 0, (8 - gh % 8) % 8), mode="reflect")


def stylize_adain(content: torch.Tensor, styles: list[torch.Tensor], options: AdainOptions, *,
                  style_weights: list[float] | None = None, mask: torch.Tensor | None = None,
                  callback: Callback | None = None) -> tuple[torch.Tensor, dict[str, Any]]:
    """AdaIN on the content (its long side capped by ``options.max_size``): any style image, no retraining;
    ``strength`` interpolates between the content's own features (0) and the AdaIN target (1; WCT at the
    model's ``wct_levels``) at every level the decoder reads; ``mask`` (the content's size) puts styles[0]
    where it is white and styles[1] where it is black. With ``options.work_size`` the decoder runs at most
    that size and a larger output is guided-upsampled. ``callback`` hears the ``refine`` iterations (a True
    answer ends them early)."""
    if not styles:
        raise InputError("--method adain needs at least one --style image")
    weights = style_blend(style_weights, len(styles))
    if mask is not None and len(styles) != 2:
        raise InputError(f"--mask needs exactly two styles (foreground, background), got {len(styles)}")
    if mask is not None and mask.shape[-2:] != content.shape[-2:]:
        raise InputError(f"--mask is {mask.shape[-1]}x{mask.shape[-2]} but the content is "
                         f"{content.shape[-1]}x{content.shape[-2]}; they must match")
    if mask is not None and style_weights is not None:  # the mask decides where each painting goes
        raise InputError("--mask puts each painting in its own region; it does not blend them by --style-weights")
    if mask is not None and options.refine:
        raise InputError("--refine works on the whole image; it does not take --mask")
    content = capped(content, options.max_size)
    work = capped(content, options.work_size)
    if mask is not None and mask.shape[-2:] != work.shape[-2:]:
        mask = resize(mask, tuple(work.shape[-2:]))  # type: ignore[arg-type]
    dec, meta, path = load_adain_model(model_for(options))
    t0 = time.perf_counter()
    y, dev, dtype = _decode(work, styles, weights, mask, options, dec, meta)
    colors_matched = options.match_colors and mask is None
    if options.refine:
        if colors_matched:
            y = match_colors(y, work, styles, weights, options.strength)
        y = _refine(work, styles, weights, y, options, callback)
        colors_matched = False  # the refined image's colours are the criterion's
    if work.shape[-2:] != content.shape[-2:]:
        # a quarter of the time at 1024 px; held-out pairs at 2x the work size (benchmarks/README.md): more
        # of the photo's detail (SSIM), less of the painting (Gram distance) than decoding at full size
        y = guided_upsample(y, work, content)
    if colors_matched:
        y = match_colors(y, content, styles, weights, options.strength)
    y = keep_colors(y, content, options.preserve_color).clamp(0, 1)
    info = {"model": str(path), "style_weights": weights, "masked": mask is not None, "refine": options.refine,
            "seconds": time.perf_counter() - t0, "device": str(dev), "precision": precision_name(dtype),
            "size": list(y.shape[-2:]), "decoded_size": list(work.shape[-2:])}
    return y, info


def _refine(work: torch.Tensor, styles: list[torch.Tensor], weights: list[float], start: torch.Tensor,
            options: AdainOptions, callback: Callback | None) -> torch.Tensor:
    """``options.refine`` iterations of the Gatys criterion from the decoder's output. Why: on the held-out
    'test' pairs 4 iterations at 256 px took log10 style from -0.442 to -0.749 and specificity from 0.72 to
    0.97 (benchmarks/README.md); the decoder's output is a start the optimizer needs few steps from."""
    from impasto import optimize

    gatys = options.refinement(max(work.shape[-2:]))
    need = optimize.min_side([*gatys.content_layers, *gatys.style_layers])
    if min(work.shape[-2:]) < need:  # Gatys optimizes the pixels VGG reads, so it cannot pad as AdaIN does
        h, w = work.shape[-2:]
        raise InputError(f"--refine needs the photo at least {need} px a side at the work size, this one is {w}x{h} "
                         "there (AdaIN alone pads it: drop --refine)")
    out, _ = optimize.stylize(work, styles, gatys, style_weights=weights, start=start, callback=callback)
    return out


def _decode(work: torch.Tensor, styles: list[torch.Tensor], weights: list[float], mask: torch.Tensor | None,
            options: AdainOptions, dec: Any, meta: dict[str, Any]) -> tuple[torch.Tensor, torch.device, torch.dtype]:
    """The decoder's output for ``work`` (clamped to [0, 1], float32 on the CPU), with the device and
    dtype it ran in."""
    from impasto.models.adain import stylize_features

    # training saw painting and photo crops of one size, so the painting is encoded at the decoder's scale.
    # Held-out val pairs (benchmarks/README.md): at 256 px specificity 0.59 -> 0.75 against a fixed 512;
    # at 512 px a painting encoded at half the output's size loses 0.07 of log10 style distance
    style_size = options.style_size or max(work.shape[-2:])
    enc = _adain_encoder(meta.get("backbone", "vgg16-keras-offline"))
    dev = pick_device(options.device)
    dtype = pick_dtype(dev, options.precision)
    mf = memory_format(dev, dtype)
    enc, dec = inference_copy(enc, dev, dtype), inference_copy(dec, dev, dtype)
    h, w = work.shape[-2:]
    padded = _pad_for_decoder(work)
    if mask is not None:
        mask = _pad_for_decoder(mask)
    with torch.inference_mode(), autocast(dev, dtype):
        fc = enc(padded.to(dev).contiguous(memory_format=mf), list(dec.levels))
        fs = [style_features(enc, s, style_size, dev, dec.levels, mf) for s in styles]
        y = dec(stylize_features(fc, fs, weights, options.strength, dec,
                                 None if mask is None else mask.to(dev)[:, :1]))
    return y.float().cpu()[..., :h, :w].clamp(0, 1), dev, dtype
