"""The one stylization contract every front end goes through: CLI, web UI, compare, video, folder batch.

A :class:`StylizeRequest` (content, styles, and the method's options from :mod:`impasto.options`) goes
in; a :class:`StylizeOutput` (the image and a JSON-ready record: the options used, timings, losses,
device) comes out; progress goes through the callback. The method list and each option's default,
range and help are declared once, in :mod:`impasto.options`; this module says how each method runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from impasto.errors import ImpastoError, InputError
from impasto.io import require_finite
from impasto.options import (
    DEFAULT_METHOD,
    METHODS,
    WEB_DEFAULT_METHOD,
    AdainOptions,
    FastOptions,
    GatysOptions,
    Options,
    check_styles_given,
    describe,
    fields,
    from_web_form,
    get_method,
    make_options,
    method_of,
    output_size,
    record,
    style_blend,
)
from impasto.progress import Callback, Progress

__all__ = ["DEFAULT_METHOD", "METHODS", "WEB_DEFAULT_METHOD", "AdainOptions", "Cancelled", "FastOptions",
           "GatysOptions", "Options", "StylizeOutput", "StylizeRequest", "check_content_size", "check_styles_given",
           "describe", "fields",
           "from_web_form", "get_method", "make_options", "method_of", "output_size", "preload", "record",
           "stylize"]


class Cancelled(ImpastoError):
    """The callback asked to stop before a feed-forward method started."""


@dataclass
class StylizeRequest:
    content: torch.Tensor
    styles: list[torch.Tensor]
    options: Options
    style_weights: list[float] | None = None
    mask: torch.Tensor | None = None

    @property
    def method(self) -> str:
        return method_of(self.options)


@dataclass
class StylizeOutput:
    image: torch.Tensor
    record: dict[str, Any]


def stylize(request: StylizeRequest, callback: Callback | None = None, *,
            preview_every: int = 0) -> StylizeOutput:
    """Run the request's method; the output's record holds the options used, timings, losses, device."""
    method = get_method(request.method)
    if method.needs_style and not request.styles:
        raise InputError(f"--method {method.name} needs at least one --style image")
    _check_blend(request)
    check_content_size(request.content, request.options)
    runner = _RUNNERS[method.name]
    image, info = runner(request, callback, preview_every)
    require_finite(image, f"--method {method.name}")
    return StylizeOutput(image, {**record(request.options), **info})


def check_content_size(content: torch.Tensor | tuple[int, int], options: Options | str) -> None:
    """The one rule for which photo sizes a method takes (InputError, one line, when it cannot), for
    every front end to call before it queues work; :func:`stylize` calls it too. ``content`` is the
    image tensor or its (height, width); ``options`` the method's options, or its name for the defaults.

    gatys optimizes the pixels VGG reads, so it refuses a photo that is too small or too thin at its
    first scale (:func:`impasto.optimize.check_size`); fast and adain pad any photo up to the few pixels
    their networks need and crop the output back, so they take every size (1x1, 64000x1)."""
    if isinstance(options, str):
        options = make_options(options, {})
    h, w = content.shape[-2:] if isinstance(content, torch.Tensor) else content
    if isinstance(options, GatysOptions):
        from impasto.optimize import check_size

        check_size(int(h), int(w), options)


def _check_blend(request: StylizeRequest) -> None:
    w = request.style_weights
    if w is None:
        return
    style_blend(w, len(request.styles))


def _started(callback: Callback | None) -> None:
    """Feed-forward methods report once before they start; a True answer (cancel) stops here."""
    if callback is not None and callback(Progress("running", 0, 1, {}, 0.0)):
        raise Cancelled("cancelled before it started")


def _finished(callback: Callback | None, image: torch.Tensor, seconds: float) -> None:
    if callback is not None:
        callback(Progress("done", 1, 1, {}, seconds, image))


def _run_gatys(request: StylizeRequest, callback: Callback | None, preview_every: int
               ) -> tuple[torch.Tensor, dict[str, Any]]:
    from impasto.optimize import stylize as optimize

    image, result = optimize(request.content, request.styles, request.options,  # type: ignore[arg-type]
                             style_weights=request.style_weights, callback=callback, preview_every=preview_every)
    return image, result.as_dict()


def _run_fast(request: StylizeRequest, callback: Callback | None, preview_every: int
              ) -> tuple[torch.Tensor, dict[str, Any]]:
    from impasto.methods import stylize_fast

    _started(callback)
    t0 = time.perf_counter()
    image, info = stylize_fast(request.content, request.options)  # type: ignore[arg-type]
    _finished(callback, image, time.perf_counter() - t0)
    return image, info


def _run_adain(request: StylizeRequest, callback: Callback | None, preview_every: int
               ) -> tuple[torch.Tensor, dict[str, Any]]:
    from impasto.methods import stylize_adain

    _started(callback)
    t0 = time.perf_counter()
    image, info = stylize_adain(request.content, request.styles, request.options,  # type: ignore[arg-type]
                                style_weights=request.style_weights, mask=request.mask, callback=callback)
    _finished(callback, image, time.perf_counter() - t0)
    return image, info


_RUNNERS: dict[str, Callable[[StylizeRequest, Callback | None, int], tuple[torch.Tensor, dict[str, Any]]]] = {
    "gatys": _run_gatys,
    "fast": _run_fast,
    "adain": _run_adain,
}


def model_path(options: Options) -> Path | None:
    """The model file a feed-forward method will load (None for gatys)."""
    if isinstance(options, GatysOptions):
        return None
    from impasto.methods import model_for

    return model_for(options)


def preload(options: Options) -> None:
    """Load (and so check) the model a request will use: fail before any work on a bad file."""
    from impasto.methods import load_adain_model, load_fast_model

    if isinstance(options, FastOptions):
        load_fast_model(model_path(options))  # type: ignore[arg-type]
    elif isinstance(options, AdainOptions):
        load_adain_model(model_path(options))
