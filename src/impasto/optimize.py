"""The Gatys engine: optimize the pixels of an image so its VGG features match a content image's
and its Gram matrices match one or several style images'.

``stylize(content, styles, ..., callback)`` is the one entry point; the CLI progress bar, the web
preview and ``--json`` all read the same :class:`Progress` records. Coarse-to-fine: for sizes above
``start_size`` it optimizes at a small scale first, upsamples, and spends fewer iterations on each
larger scale, which is both faster and better (large structures settle where they are cheap).
"""

from __future__ import annotations

import copy
import math
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F

from impasto import calibrate, color, tiling
from impasto.device import autocast, memory_format, pick_device, pick_dtype, precision_name
from impasto.errors import InputError
from impasto.features import Encoder, Weights, resolve_weights
from impasto.io import ImageLike, fit_size, load_image, resize
from impasto.lbfgs import LBFGS
from impasto.losses import ContentLoss, GramStyleLoss, TVLoss

DEFAULT_CONTENT_LAYERS = ("relu4_2",)
DEFAULT_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
#: defaults chosen by looking at outputs on ../shared/images pairs (see docs/defaults.md)
DEFAULT_CONTENT_WEIGHT = 1.0
DEFAULT_STYLE_WEIGHT = 10.0
DEFAULT_TV_WEIGHT = 1.0
DEFAULT_ITERATIONS = {"lbfgs": 200, "adam": 400}
START_SIZE = 256
#: leave a coarse scale once 10 iterations lower its loss by less than this fraction: what the coarse
#: scales are for (layout, large strokes) has settled by then, and the finer scale redoes the detail
#: anyway. 0.05 over 0.02: a default 1024 px run 12% faster with the same final loss (0.3899 vs
#: 0.3897) and a lower loss at every earlier moment of the run (benchmarks/README.md)
COARSE_PLATEAU = 0.05
PLATEAU_WINDOW = 10

Init = Literal["content", "noise", "style"]
PreserveColor = Literal[False, "luminance", "histogram"]


@dataclass
class Progress:
    """What every long-running function reports after each step."""

    stage: str
    step: int
    total: int
    losses: dict[str, float]
    elapsed: float
    preview: torch.Tensor | None = None
    scale: int | None = None


Callback = Callable[[Progress], bool | None]
"""Return True from a callback to stop early (the web UI's cancel, the benchmark's target loss)."""


@dataclass
class StylizeResult:
    losses: dict[str, float]
    iterations: int
    seconds: float
    peak_memory_mb: float
    device: str
    precision: str
    size: tuple[int, int]
    schedule: list[tuple[int, int]]
    weights: dict[str, Any] = field(default_factory=dict)
    #: what each scale actually ran (coarse scales may settle early)
    schedule_run: list[tuple[int, int]] = field(default_factory=list)
    stopped_early: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def scale_schedule(size: int, iterations: int, start_size: int = START_SIZE, multiscale: bool = True
                   ) -> list[tuple[int, int]]:
    """[(long side, iterations)] from coarse to fine; each scale doubles and gets half the steps."""
    if not multiscale or size <= start_size * 1.25:
        return [(size, iterations)]
    n = math.ceil(math.log2(size / start_size)) + 1
    sizes = [round(size / 2 ** (n - 1 - i)) for i in range(n)]
    return [(s, max(10, round(iterations / 2**i))) for i, s in enumerate(sizes)]


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Objective:
    """alpha * content + beta * style + gamma * TV at one scale; returns total and per-term values."""

    def __init__(self, encoder: Encoder, content: torch.nn.Module | None, style: GramStyleLoss, tv: TVLoss,
                 device: torch.device, dtype: torch.dtype | None) -> None:
        self.encoder, self.content, self.style, self.tv = encoder, content, style, tv
        self.device, self.dtype = device, dtype

    def __call__(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with autocast(self.device, self.dtype):
            feats = self.encoder(image)
        terms = {"style": self.style(feats), "tv": self.tv(image)}
        if self.content is not None:
            terms["content"] = self.content(feats)
        total = sum(terms.values())
        return total, terms  # type: ignore[return-value]


def _plateaued(totals: list[float], threshold: float) -> bool:
    """True once the last ``PLATEAU_WINDOW`` iterations lowered the loss by less than ``threshold``."""
    if threshold <= 0 or len(totals) <= PLATEAU_WINDOW:
        return False
    before, now = totals[-PLATEAU_WINDOW - 1], totals[-1]
    return before - now < threshold * abs(before)


def _check_weights(**weights: float) -> None:
    for name, value in weights.items():
        if value is None or not math.isfinite(value) or value < 0:
            raise InputError(f"--{name.replace('_', '-')} must be a finite number >= 0, got {value}")


def _init_image(kind: str, content: torch.Tensor, style: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    if kind == "content":
        return content.clone()
    if kind == "noise":
        return torch.rand(content.shape, generator=gen).to(content)
    if kind == "style":
        return resize(style, tuple(content.shape[-2:]))  # type: ignore[arg-type]
    raise InputError(f"unknown init {kind!r} (use content, noise or style)")


def stylize(
    content: ImageLike,  # type: ignore[valid-type]
    styles: ImageLike | Sequence[ImageLike],  # type: ignore[valid-type]
    *,
    style_weights: Sequence[float] | None = None,
    content_weight: float = DEFAULT_CONTENT_WEIGHT,
    style_weight: float = DEFAULT_STYLE_WEIGHT,
    tv_weight: float = DEFAULT_TV_WEIGHT,
    content_layers: Sequence[str] = DEFAULT_CONTENT_LAYERS,
    style_layers: Sequence[str] = DEFAULT_STYLE_LAYERS,
    layer_weights: dict[str, float] | None = None,
    optimizer: str = "lbfgs",
    iterations: int | None = None,
    size: int | None = 512,
    style_scale: float = 1.0,
    init: str = "content",
    preserve_color: PreserveColor | str = False,
    seed: int = 0,
    device: str = "auto",
    precision: str = "auto",
    backbone: str | None = None,
    weights: str | Weights | None = None,
    pooling: str = "max",
    multiscale: bool = True,
    start_size: int = START_SIZE,
    coarse_plateau: float = COARSE_PLATEAU,
    tile_above: int | None = tiling.DEFAULT_MAX_PIXELS,
    tile_size: int = tiling.DEFAULT_TILE,
    callback: Callback | None = None,
    preview_every: int = 0,
    normalize: bool = True,
    encoder: Encoder | None = None,
    strength: float | None = None,
) -> tuple[torch.Tensor, StylizeResult]:
    """Stylize ``content`` with ``styles``; returns the (1,3,H,W) image in [0,1] and a result record.

    ``strength`` (0..1) replaces ``content_weight``, ``style_weight`` and ``layer_weights`` by weights
    calibrated on this pair (:mod:`impasto.calibrate`), so the same strength gives the same balance of
    content kept and style taken on any pair; the chosen weights are in ``result.weights``. Coarse scales
    end early once their loss stops falling (``coarse_plateau``; 0 runs every scale's full count); the final
    scale always runs its full count; ``result.schedule_run`` says what each scale ran."""
    t0 = time.perf_counter()
    dev = pick_device(device)
    dtype = pick_dtype(dev, precision)
    mf = memory_format(dev, dtype)
    if optimizer not in DEFAULT_ITERATIONS:
        raise InputError(f"unknown optimizer {optimizer!r} (use lbfgs or adam)")
    if preserve_color not in (False, None, "none", "luminance", "histogram"):
        raise InputError(f"unknown --preserve-color {preserve_color!r} (use luminance or histogram)")
    _check_weights(content_weight=content_weight, style_weight=style_weight, tv_weight=tv_weight,
                   style_scale=style_scale)
    if style_scale <= 0:
        raise InputError("--style-scale must be > 0")
    if strength is not None and not 0 <= strength <= 1:
        raise InputError(f"--strength must be between 0 and 1, got {strength}")
    unknown = set(layer_weights or {}) - set(style_layers)
    if unknown:
        raise InputError(f"--layer-weights names {', '.join(sorted(unknown))}, not among the style layers "
                         f"{', '.join(style_layers)}")
    if not 0 <= coarse_plateau < 1:
        raise InputError(f"coarse_plateau must be in [0, 1), got {coarse_plateau}")
    if strength is not None and not normalize:
        raise InputError("strength calibration needs the normalized losses (normalize=True)")
    iterations = DEFAULT_ITERATIONS[optimizer] if iterations is None else iterations
    if iterations < 1:
        raise InputError("--iterations must be >= 1")

    style_list = list(styles) if isinstance(styles, list | tuple) else [styles]
    if not style_list:
        raise InputError("at least one style image is needed")
    blend = list(style_weights) if style_weights is not None else [1.0] * len(style_list)
    if len(blend) != len(style_list):
        raise InputError(f"{len(style_list)} styles but {len(blend)} style weights")
    if any((not math.isfinite(w)) or w < 0 for w in blend) or sum(blend) <= 0:
        raise InputError("style weights must be >= 0 and not all zero")

    content_img = load_image(content)
    style_imgs = [load_image(s) for s in style_list]
    if preserve_color == "histogram":
        style_imgs = [color.match_color_histogram(s, content_img) for s in style_imgs]
    luminance_only = preserve_color == "luminance"
    original_content = content_img
    if luminance_only:
        content_img = color.luminance(content_img)
        style_imgs = [color.match_luminance(color.luminance(s), content_img) for s in style_imgs]

    h0, w0 = content_img.shape[-2:]
    final_long = size or max(h0, w0)
    schedule = scale_schedule(final_long, iterations, start_size, multiscale)
    enc = encoder or Encoder(
        [*content_layers, *style_layers], resolve_weights(backbone, weights), pooling=pooling  # type: ignore[arg-type]
    )
    enc = enc.to(dev, memory_format=mf)
    if dtype is not None:  # weights held in the compute dtype: autocast would re-cast all of them every step
        enc = (enc if encoder is None else copy.deepcopy(enc)).to(dtype)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)

    image: torch.Tensor | None = None
    step_total = sum(n for _, n in schedule)
    step = 0
    terms_f: dict[str, float] = {}
    stopped = False
    calibration = None
    schedule_run: list[tuple[int, int]] = []
    curvature = _CurvatureCarry()
    for scale_index, (long_side, n_iter) in enumerate(schedule):
        hw = fit_size(h0, w0, long_side)
        c = resize(content_img, hw).to(dev).contiguous(memory_format=mf)
        s_long = max(16, round(long_side * style_scale))
        s_imgs = [resize(s, fit_size(s.shape[-2], s.shape[-1], s_long)).to(dev).contiguous(memory_format=mf)
                  for s in style_imgs]
        if strength is not None and calibration is None:  # measured once, on the first (cheapest) scale
            unit = _style_loss(enc, s_imgs, blend, style_layers, None, float(len(style_layers)), True, dev, dtype)
            reference = s_imgs[max(range(len(blend)), key=blend.__getitem__)]
            calibration = calibrate.calibrate(strength, *calibrate.measure(enc, c, unit, content_layers, reference,
                                                                            dev, dtype))
            content_weight, style_weight = calibration.content_weight, calibration.style_weight
            layer_weights = calibration.layer_weights
        style_loss = _style_loss(enc, s_imgs, blend, style_layers, layer_weights, style_weight, normalize, dev, dtype)
        tv = TVLoss(tv_weight, normalize)
        if image is None:
            image = _init_image(init, c, s_imgs[0], gen)
        else:
            image = F.interpolate(image, size=hw, mode="bicubic", align_corners=False).clamp(0, 1)
        stage = f"scale {scale_index + 1}/{len(schedule)}"
        if tile_above is not None and hw[0] * hw[1] > tile_above:
            before = step
            image, step, stopped, terms_f = _run_tiled(
                image, c, enc, style_loss, tv, content_layers, content_weight, normalize, dev, dtype, optimizer,
                n_iter, gen, callback, stage, step, step_total, t0, long_side, tile_size, curvature)
            schedule_run.append((long_side, step - before))
            if stopped:
                break
            continue
        objective = Objective(enc, _content_loss(enc, c, content_layers, content_weight, normalize, dev, dtype),
                              style_loss, tv, dev, dtype)
        image = image.detach().to(dev).contiguous().requires_grad_(True)  # L-BFGS needs a flat view
        opt = curvature.optimizer(optimizer, image)
        totals: list[float] = []
        last_scale = scale_index == len(schedule) - 1
        for i in range(n_iter):
            terms_f = _step(opt, objective, image)
            step += 1
            totals.append(terms_f["total"])
            if not math.isfinite(terms_f["total"]):
                raise InputError("the optimization diverged (loss is not finite); lower the weights or use lbfgs")
            settled = not last_scale and _plateaued(totals, coarse_plateau) and i < n_iter - 1
            if settled:
                step_total -= n_iter - i - 1  # the progress total shrinks by what this scale skips
            if callback is not None:
                want_preview = preview_every > 0 and (i % preview_every == 0 or i == n_iter - 1)
                preview = _finish(image, original_content, luminance_only) if want_preview else None
                report = Progress(stage, step, step_total, terms_f, time.perf_counter() - t0, preview, long_side)
                if callback(report):
                    stopped = True
                    break
            if settled:
                break
        schedule_run.append((long_side, len(totals)))
        curvature.keep(opt, image)
        if stopped:
            break

    assert image is not None
    out = _finish(image, original_content, luminance_only)
    result = StylizeResult(
        losses=terms_f, iterations=step, seconds=time.perf_counter() - t0, peak_memory_mb=peak_memory_mb(dev),
        device=str(dev), precision=precision_name(dtype), size=(int(out.shape[-2]), int(out.shape[-1])),
        schedule=schedule, schedule_run=schedule_run, stopped_early=stopped,
        weights={"content_weight": content_weight, "style_weight": style_weight, "tv_weight": tv_weight,
                 "style_weights": blend, "content_layers": list(content_layers),
                 "style_layers": list(style_layers), "layer_weights": layer_weights or {},
                 "backbone": enc.weights.entry.name, "optimizer": optimizer, "init": init, "seed": seed,
                 "strength": strength, "calibration": calibration.as_dict() if calibration else None},
    )
    return out, result


def _run_tiled(image: torch.Tensor, content: torch.Tensor, enc: Encoder, style_loss: GramStyleLoss, tv: TVLoss,
               content_layers: Sequence[str], content_weight: float, normalize: bool, dev: torch.device,
               dtype: torch.dtype | None, optimizer: str, n_iter: int, gen: torch.Generator,
               callback: Callback | None, stage: str, step: int, step_total: int, t0: float, long_side: int,
               tile_size: int, curvature: _CurvatureCarry) -> tuple[torch.Tensor, int, bool, dict[str, float]]:
    """One scale in overlapping tiles (see :mod:`impasto.tiling`); progress is reported per pass."""
    passes = 2 if n_iter >= 4 else 1
    state = {"step": step, "stopped": False, "terms": {}}

    def step_tile(piece: torch.Tensor, content_tile: torch.Tensor, n: int) -> dict[str, float]:
        objective = Objective(enc, _content_loss(enc, content_tile.to(dev), content_layers, content_weight,
                                                 normalize, dev, dtype), style_loss, tv, dev, dtype)
        param = piece.to(dev).clone().contiguous().requires_grad_(True)
        opt = curvature.optimizer(optimizer, param)
        terms: dict[str, float] = {}
        for _ in range(n):
            terms = _step(opt, objective, param)
        curvature.keep(opt, param)
        piece.copy_(param.detach().to(piece.device))
        return terms

    def on_pass(p: int, terms: dict[str, float]) -> bool:
        state["step"] += max(1, n_iter // passes)
        state["terms"] = terms
        if callback is not None and callback(Progress(f"{stage} (tiled pass {p + 1}/{passes})", state["step"],
                                                      step_total, terms, time.perf_counter() - t0, None, long_side)):
            state["stopped"] = True
        return bool(state["stopped"])

    out = tiling.optimize_tiled(image.detach().cpu(), content.detach().cpu(), step_tile, iterations=n_iter,
                                passes=passes, tile=tile_size, overlap=max(8, tile_size // 8), generator=gen,
                                on_pass=on_pass)
    return out, state["step"], bool(state["stopped"]), state["terms"]  # type: ignore[return-value]


def _step(opt: torch.optim.Optimizer, objective: Objective, image: torch.Tensor) -> dict[str, float]:
    """One optimizer iteration (one function evaluation for L-BFGS); returns the per-term losses."""
    latest: dict[str, torch.Tensor] = {}

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        total, terms = objective(image)
        total.backward()
        latest.update(terms, total=total)
        return total

    opt.step(closure)
    return {k: float(v.detach()) for k, v in latest.items()}


def _finish(image: torch.Tensor, original_content: torch.Tensor, luminance_only: bool) -> torch.Tensor:
    out = image.detach().float().clamp(0, 1).cpu().contiguous()
    if luminance_only:
        out = color.combine_luminance(out, resize(original_content, tuple(out.shape[-2:])))  # type: ignore[arg-type]
    return out


class _CurvatureCarry:
    """L-BFGS's inverse-curvature scale per pixel, carried to the next scale or tile so its first step is
    a real one (:mod:`impasto.lbfgs`). The losses are means over pixels, so the curvature of each pixel
    falls as 1/pixels: the carried inverse is per pixel and multiplied by the new image's pixel count."""

    def __init__(self) -> None:
        self.per_pixel: float | None = None

    def optimizer(self, name: str, image: torch.Tensor) -> torch.optim.Optimizer:
        pixels = image.shape[-2] * image.shape[-1]
        return _make_optimizer(name, image, None if self.per_pixel is None else self.per_pixel * pixels)

    def keep(self, opt: torch.optim.Optimizer, image: torch.Tensor) -> None:
        if isinstance(opt, LBFGS) and opt.inverse_curvature is not None:
            self.per_pixel = opt.inverse_curvature / (image.shape[-2] * image.shape[-1])


def _make_optimizer(name: str, image: torch.Tensor, initial_scale: float | None = None) -> torch.optim.Optimizer:
    if name == "lbfgs":  # one evaluation per step() so the callback sees every iteration
        return LBFGS([image], lr=1.0, history_size=50, initial_scale=initial_scale)
    return torch.optim.Adam([image], lr=0.02)


def _style_loss(enc: Encoder, styles: list[torch.Tensor], blend: list[float], style_layers: Sequence[str],
                layer_weights: dict[str, float] | None, style_weight: float, normalize: bool, dev: torch.device,
                dtype: torch.dtype | None) -> GramStyleLoss:
    """Blended Gram targets of the whole style images: computed once per scale, shared by all tiles."""
    with torch.no_grad(), autocast(dev, dtype):
        s_feats = [enc(s, style_layers) for s in styles]
    targets = GramStyleLoss.targets_from(s_feats, blend, list(style_layers), normalize)
    return GramStyleLoss(targets, layer_weights, style_weight / len(style_layers), normalize)


def _content_loss(enc: Encoder, content: torch.Tensor, content_layers: Sequence[str], content_weight: float,
                  normalize: bool, dev: torch.device, dtype: torch.dtype | None) -> torch.nn.Module | None:
    if content_weight <= 0:
        return None
    with torch.no_grad(), autocast(dev, dtype):
        c_feats = enc(content, content_layers)
    per_layer = content_weight / len(content_layers)
    losses = [ContentLoss(n, c_feats[n], per_layer, normalize) for n in content_layers]
    return losses[0] if len(losses) == 1 else _SumContent(losses)


class _SumContent(torch.nn.Module):
    def __init__(self, losses: list[ContentLoss]) -> None:
        super().__init__()
        self.losses = torch.nn.ModuleList(losses)

    def forward(self, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        return sum(loss(feats) for loss in self.losses)  # type: ignore[return-value]
