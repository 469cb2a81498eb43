"""The Gatys engine: optimize the pixels of an image so its VGG features match a content image's
and its Gram matrices match one or several style images'.

``stylize(content, styles, ..., callback)`` is the one entry point; the CLI progress bar, the web
preview and ``--json`` all read the same :class:`Progress` records. Coarse-to-fine: for sizes above
``start_size`` it optimizes at a small scale first, upsamples, and spends fewer iterations on each
larger scale, which is both faster and better (large structures settle where they are cheap).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
import resource
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F

from impasto import calibrate, color, tiling
from impasto.device import autocast, memory_format, pick_device, pick_dtype, precision_name
from impasto.errors import InputError
from impasto.features import Encoder, Weights, resolve_weights
from impasto.io import ImageLike, fit_size, load_image, resize, tile_to_min
from impasto.lbfgs import LBFGS
from impasto.losses import ContentLoss, GramStyleLoss, TVLoss
from impasto.options import GatysOptions, make_options, style_blend
from impasto.progress import Callback, Progress

__all__ = ["Callback", "Progress", "StylizeResult", "scale_schedule", "stylize"]

DEFAULT_CONTENT_LAYERS = ("relu4_2",)
DEFAULT_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
#: the fixed weights used when some are hand-set (see docs/defaults_sheet.jpg, made by docs/make_defaults_sheet.py)
DEFAULT_CONTENT_WEIGHT = 1.0
DEFAULT_STYLE_WEIGHT = 10.0
DEFAULT_TV_WEIGHT = 1.0
DEFAULT_ITERATIONS = {"lbfgs": 200, "adam": 400}
#: a two-scale run (321-512 px, the default 512 included) starts L-BFGS at 160, so its final scale gets
#: 80: on 16 held-out pairs the output after 81 final iterations was within 2.0% (content, worst pair
#: 2.5%) and 0.7% (style) of 100's at full size, ~12 s sooner. At 1024 px the final scale's 40 were
#: +3.8% on the first pair tried, so larger runs keep 200 (benchmarks/gatys_schedule_study.py, #23)
TWO_SCALE_LBFGS_ITERATIONS = 160

START_SIZE = 256
#: leave a coarse scale once 10 iterations lower its loss by less than this fraction: what the coarse
#: scales are for (layout, large strokes) has settled by then, and the finer scale redoes the detail
#: anyway. 0.05 over 0.02: a default 1024 px run 12% faster with the same final loss (0.3899 vs
#: 0.3897) and a lower loss at every earlier moment of the run (benchmarks/README.md)
COARSE_PLATEAU = 0.05
PLATEAU_WINDOW = 10

Init = Literal["content", "noise", "style"]
#: impasto's own L-BFGS (the default) or torch's Adam
Optimizer = LBFGS | torch.optim.Optimizer
PreserveColor = Literal[False, "luminance", "histogram"]


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
    """[(long side, iterations)] from coarse to fine; each scale doubles and gets half the steps (at least
    one: ``iterations=1`` means one iteration per scale)."""
    if not multiscale or size <= start_size * 1.25:
        return [(size, iterations)]
    n = math.ceil(math.log2(size / start_size)) + 1
    sizes = [round(size / 2 ** (n - 1 - i)) for i in range(n)]
    return [(s, max(1, round(iterations / 2**i))) for i, s in enumerate(sizes)]


def default_iterations(optimizer: str, size: int, start_size: int = START_SIZE, multiscale: bool = True) -> int:
    """First-scale iterations when the user gives none: the measured shorter count for a two-scale
    L-BFGS run, else :data:`DEFAULT_ITERATIONS`."""
    if optimizer == "lbfgs" and len(scale_schedule(size, 2, start_size, multiscale)) == 2:
        return TWO_SCALE_LBFGS_ITERATIONS
    return DEFAULT_ITERATIONS[optimizer]


def planned_schedule(options: GatysOptions, size: int, start_size: int = START_SIZE) -> list[tuple[int, int]]:
    """The scales a run of ``options`` at ``size`` px will go through: the user's --iterations, or the
    default for that size. The engine, the size check and the CLI's printed plan all read this one."""
    iterations = options.iterations or default_iterations(options.optimizer, size, start_size, options.multiscale)
    return scale_schedule(size, iterations, start_size, options.multiscale)


def min_side(layers: Sequence[str]) -> int:
    """Pixels a side VGG needs to reach the deepest of ``layers``: it halves the image at every pooling,
    so relu5_1 (behind four) needs 16 and a smaller side ends in a zero-sized map."""
    need = 1
    for name in layers:
        found = re.fullmatch(r"(conv|relu|pool)([1-5])(_\d+)?", name)
        if found:  # an unknown name is the encoder's to refuse, with its own message
            block = int(found.group(2))
            need = max(need, 2 ** (block if found.group(1) == "pool" else block - 1))
    return need


def check_size(h: int, w: int, options: GatysOptions, start_size: int = START_SIZE) -> None:
    """Refuse, in one line, a photo VGG cannot see at the first (smallest) scale of its schedule: a
    --size below 16, or a photo so thin that its short side rounds below what the deepest layer needs.
    Gatys optimizes the very pixels VGG reads, so padding would stylize the padding; the feed-forward
    methods pad instead (methods.FAST_MIN_SIDE, ADAIN_MIN_SIDE). Front ends reach this rule through
    :func:`impasto.stylizer.check_content_size`."""
    first = planned_schedule(options, options.size or max(h, w), start_size)[0][0]
    sh, sw = fit_size(h, w, first)
    need = min_side([*options.content_layers, *options.style_layers])
    if min(sh, sw) < need:
        fix = ("raise --size, or use --method fast or adain (they pad)" if min(fit_size(h, w, start_size)) >= need
               else "a photo this thin needs --method fast or adain (they pad)")
        raise InputError(f"a {w}x{h} photo is {sw}x{sh} at gatys' first scale ({first} px), below the {need} px a "
                         f"side its VGG layers need: {fix}")


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


@dataclass
class EngineKnobs:
    """Engine settings that are not user options (tests, benchmarks and the tiler tune them)."""

    start_size: int = START_SIZE
    coarse_plateau: float = COARSE_PLATEAU
    tile_above: int | None = tiling.DEFAULT_MAX_PIXELS
    tile_size: int = tiling.DEFAULT_TILE
    normalize: bool = True
    #: a weights entry object instead of a name (the Python API accepts either for ``weights``)
    weights_entry: Weights | None = None


def _split_settings(settings: dict[str, Any]) -> tuple[GatysOptions, EngineKnobs]:
    """Keyword arguments of :func:`stylize` -> the method's validated options and the engine knobs."""
    knob_names = {f.name for f in dataclasses.fields(EngineKnobs)}
    knobs = EngineKnobs(**{k: v for k, v in settings.items() if k in knob_names})
    user = {k: v for k, v in settings.items() if k not in knob_names}
    if user.get("preserve_color") in (False, "none"):
        user["preserve_color"] = None
    if isinstance(user.get("weights"), Weights):
        knobs.weights_entry = user.pop("weights")
    return make_options("gatys", user), knobs  # type: ignore[return-value]


def _check(options: GatysOptions, knobs: EngineKnobs) -> None:
    """What the declarations cannot say on their own (relations between options)."""
    unknown = set(options.layer_weights or {}) - set(options.style_layers)
    if unknown:
        raise InputError(f"--layer-weights names {', '.join(sorted(unknown))}, not among the style layers "
                         f"{', '.join(options.style_layers)}")
    if not 0 <= knobs.coarse_plateau < 1:
        raise InputError(f"coarse_plateau must be in [0, 1), got {knobs.coarse_plateau}")
    if options.strength is not None and not knobs.normalize:
        raise InputError("strength calibration needs the normalized losses (normalize=True)")


def _init_image(kind: str, content: torch.Tensor, style: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    if kind == "content":
        return content.clone()
    if kind == "noise":
        return torch.rand(content.shape, generator=gen).to(content)
    if kind == "style":
        return resize(style, tuple(content.shape[-2:]))  # type: ignore[arg-type]
    raise InputError(f"unknown init {kind!r} (use content, noise or style)")


@dataclass
class _Images:
    """The pair as the engine optimizes it (colour handling applied), and the photo as given."""

    content: torch.Tensor
    styles: list[torch.Tensor]
    blend: list[float]
    original: torch.Tensor
    luminance_only: bool

    @classmethod
    def load(cls, content: ImageLike, styles: Any, style_weights: Sequence[float] | None,  # type: ignore[valid-type]
             preserve_color: str | None) -> _Images:
        style_list = list(styles) if isinstance(styles, list | tuple) else [styles]
        if not style_list:
            raise InputError("at least one style image is needed")
        blend = style_blend(style_weights, len(style_list))
        content_img = load_image(content)
        style_imgs = [load_image(s) for s in style_list]
        if preserve_color == "histogram":
            style_imgs = [color.match_color_histogram(s, content_img) for s in style_imgs]
        original = content_img
        if preserve_color == "luminance":
            content_img = color.luminance(content_img)
            style_imgs = [color.match_luminance(color.luminance(s), content_img) for s in style_imgs]
        return cls(content_img, style_imgs, blend, original, preserve_color == "luminance")


@dataclass
class _Scale:
    """One level of the pyramid: its images at that size and its iteration budget."""

    index: int
    count: int
    long_side: int
    iterations: int
    content: torch.Tensor
    styles: list[torch.Tensor]

    @property
    def stage(self) -> str:
        return f"scale {self.index + 1}/{self.count}"

    @property
    def last(self) -> bool:
        return self.index == self.count - 1


@dataclass
class _Run:
    """Everything one stylization carries from scale to scale: the request, the device, the encoder,
    the calibrated weights, progress counters and the L-BFGS curvature."""

    options: GatysOptions
    knobs: EngineKnobs
    images: _Images
    enc: Encoder
    dev: torch.device
    dtype: torch.dtype | None
    callback: Callback | None
    preview_every: int
    t0: float
    #: the first scale's starting image when the caller gives one (else options.init decides)
    start: torch.Tensor | None = None
    step: int = 0
    step_total: int = 0
    stopped: bool = False
    terms: dict[str, float] = field(default_factory=dict)
    calibration: calibrate.Calibration | None = None
    curvature: _CurvatureCarry = field(default_factory=lambda: _CurvatureCarry())
    gen: torch.Generator = field(default_factory=torch.Generator)

    @property
    def mf(self) -> torch.memory_format:
        return memory_format(self.dev, self.dtype)

    def weights(self) -> tuple[float, float, dict[str, float] | None]:
        """(content, style, per-layer) weights: calibrated, hand-set, or the fixed defaults."""
        if self.calibration is not None:
            c = self.calibration
            return c.content_weight, c.style_weight, c.layer_weights
        o = self.options
        return (DEFAULT_CONTENT_WEIGHT if o.content_weight is None else o.content_weight,
                DEFAULT_STYLE_WEIGHT if o.style_weight is None else o.style_weight, o.layer_weights)

    def report(self, scale: _Scale, stage: str, preview: torch.Tensor | None = None) -> None:
        """Tell the callback; a True answer stops the run."""
        if self.callback is not None and self.callback(Progress(
                stage, self.step, self.step_total, self.terms, time.perf_counter() - self.t0, preview,
                scale.long_side)):
            self.stopped = True


def stylize(content: ImageLike, styles: ImageLike | Sequence[ImageLike],  # type: ignore[valid-type]
            options: GatysOptions | None = None, *, style_weights: Sequence[float] | None = None,
            callback: Callback | None = None, preview_every: int = 0, encoder: Encoder | None = None,
            start: torch.Tensor | None = None, **settings: Any) -> tuple[torch.Tensor, StylizeResult]:
    """Stylize ``content`` with ``styles``; returns the (1,3,H,W) image in [0,1] and a result record.

    The options are :class:`impasto.options.GatysOptions` (give the object, or its fields as keyword
    arguments: ``size=``, ``strength=``, ``iterations=``, ...; the defaults are the CLI's), plus the
    :class:`EngineKnobs` as keyword arguments. ``strength`` (0..1, default 0.5) sets content, style and
    per-layer weights calibrated on this pair (:mod:`impasto.calibrate`), so the same strength gives the
    same balance on any pair; hand-set ``content_weight``/``style_weight``/``layer_weights`` replace it.
    Coarse scales end early once their loss stops falling; the final scale always runs its full count;
    ``result.schedule_run`` says what each scale ran. ``start`` (1,3,h,w in [0,1]) is the image the first
    scale starts from instead of ``options.init`` (a feed-forward result to refine)."""
    t0 = time.perf_counter()
    if options is None:
        options, knobs = _split_settings(settings)
    else:
        knobs = EngineKnobs(**settings)
    _check(options, knobs)
    images = _Images.load(content, styles, style_weights, options.preserve_color)
    check_size(*images.content.shape[-2:], options, knobs.start_size)
    dev = pick_device(options.device)
    run = _Run(options, knobs, images, _encoder(options, knobs, encoder, dev), dev,
               pick_dtype(dev, options.precision), callback, preview_every, t0, start=start)
    torch.manual_seed(options.seed)
    run.gen.manual_seed(options.seed)
    h0, w0 = images.content.shape[-2:]
    schedule = planned_schedule(options, options.size or max(h0, w0), knobs.start_size)
    run.step_total = sum(n for _, n in schedule)
    image: torch.Tensor | None = None
    schedule_run: list[tuple[int, int]] = []
    for index, (long_side, n_iter) in enumerate(schedule):
        scale = _scale(run, index, len(schedule), long_side, n_iter)
        image = _next_image(run, scale, image)
        before = run.step
        image = _optimize_scale(run, scale, image)
        schedule_run.append((long_side, run.step - before))
        if run.stopped:
            break
    assert image is not None
    out = _finish(image, images.original, images.luminance_only)
    return out, _result(run, out, schedule, schedule_run)


def _encoder(options: GatysOptions, knobs: EngineKnobs, encoder: Encoder | None, dev: torch.device) -> Encoder:
    """The VGG encoder on the device, its weights held in the compute dtype (autocast would re-cast all of
    them every step); a caller's encoder is copied, never changed in place."""
    dtype = pick_dtype(dev, options.precision)
    mf = memory_format(dev, dtype)
    entry = knobs.weights_entry or options.weights
    backbone = None if entry is not None else options.backbone
    enc = encoder or Encoder([*options.content_layers, *options.style_layers], resolve_weights(backbone, entry),
                             pooling=options.pooling)  # type: ignore[arg-type]
    enc = enc.to(dev, memory_format=mf)
    if dtype is not None:
        enc = (enc if encoder is None else copy.deepcopy(enc)).to(dtype)
    return enc


def _scale(run: _Run, index: int, count: int, long_side: int, n_iter: int) -> _Scale:
    img = run.images
    h0, w0 = img.content.shape[-2:]
    c = resize(img.content, fit_size(h0, w0, long_side)).to(run.dev).contiguous(memory_format=run.mf)
    s_long = max(16, round(long_side * run.options.style_scale))
    need = min_side([*run.options.content_layers, *run.options.style_layers])  # a thin painting is repeated
    styles = [tile_to_min(resize(s, fit_size(s.shape[-2], s.shape[-1], s_long)), need).to(run.dev).contiguous(
        memory_format=run.mf) for s in img.styles]
    return _Scale(index, count, long_side, n_iter, c, styles)


def _next_image(run: _Run, scale: _Scale, image: torch.Tensor | None) -> torch.Tensor:
    """The starting image of a scale: the init at the first, the previous scale's result upsampled after."""
    if image is None and run.start is not None:
        start = resize(run.start, tuple(scale.content.shape[-2:])).to(scale.content).clamp(0, 1)  # type: ignore[arg-type]
        return start.contiguous(memory_format=run.mf)
    if image is None:
        return _init_image(run.options.init, scale.content, scale.styles[0], run.gen)
    return F.interpolate(image, size=tuple(scale.content.shape[-2:]), mode="bicubic", align_corners=False).clamp(0, 1)


def _criterion(run: _Run, scale: _Scale) -> tuple[GramStyleLoss, TVLoss]:
    """The style and TV terms at this scale; the first scale also calibrates the weights for ``strength``
    (measured once, where it is cheapest)."""
    o, normalize = run.options, run.knobs.normalize
    if o.strength is not None and run.calibration is None:
        unit = _style_loss(run, scale, None, float(len(o.style_layers)))
        blend = run.images.blend
        reference = scale.styles[max(range(len(blend)), key=blend.__getitem__)]
        run.calibration = calibrate.calibrate(o.strength, *calibrate.measure(
            run.enc, scale.content, unit, o.content_layers, reference, run.dev, run.dtype))
    _, style_weight, layer_weights = run.weights()
    return _style_loss(run, scale, layer_weights, style_weight), TVLoss(o.tv_weight, normalize)


def _optimize_scale(run: _Run, scale: _Scale, image: torch.Tensor) -> torch.Tensor:
    """Run one scale's iterations (in tiles when the image is too large); returns the optimized image."""
    style_loss, tv = _criterion(run, scale)
    hw = scale.content.shape[-2] * scale.content.shape[-1]
    if run.knobs.tile_above is not None and hw > run.knobs.tile_above:
        return _run_tiled(run, scale, image, style_loss, tv)
    objective = Objective(run.enc, _content_loss(run, scale.content), style_loss, tv, run.dev, run.dtype)
    image = image.detach().to(run.dev).contiguous().requires_grad_(True)  # L-BFGS needs a flat view
    opt = run.curvature.optimizer(run.options.optimizer, image)
    totals: list[float] = []
    for i in range(scale.iterations):
        run.terms = _step(opt, objective, image)
        run.step += 1
        totals.append(run.terms["total"])
        if not math.isfinite(run.terms["total"]):
            raise InputError("the optimization diverged (loss is not finite); lower the weights or use lbfgs")
        settled = not scale.last and _plateaued(totals, run.knobs.coarse_plateau) and i < scale.iterations - 1
        if settled:
            run.step_total -= scale.iterations - i - 1  # the progress total shrinks by what this scale skips
        every = run.preview_every
        want_preview = every > 0 and (i % every == 0 or i == scale.iterations - 1) and run.callback is not None
        run.report(scale, scale.stage, _finish(image, run.images.original, run.images.luminance_only)
                   if want_preview else None)
        if run.stopped or settled:
            break
    run.curvature.keep(opt, image)
    return image


def _result(run: _Run, out: torch.Tensor, schedule: list[tuple[int, int]], schedule_run: list[tuple[int, int]]
            ) -> StylizeResult:
    o = run.options
    content_weight, style_weight, layer_weights = run.weights()
    return StylizeResult(
        losses=run.terms, iterations=run.step, seconds=time.perf_counter() - run.t0,
        peak_memory_mb=peak_memory_mb(run.dev), device=str(run.dev), precision=precision_name(run.dtype),
        size=(int(out.shape[-2]), int(out.shape[-1])), schedule=schedule, schedule_run=schedule_run,
        stopped_early=run.stopped,
        weights={"content_weight": content_weight, "style_weight": style_weight, "tv_weight": o.tv_weight,
                 "style_weights": run.images.blend, "content_layers": list(o.content_layers),
                 "style_layers": list(o.style_layers), "layer_weights": layer_weights or {},
                 "backbone": run.enc.weights.entry.name, "optimizer": o.optimizer, "init": o.init, "seed": o.seed,
                 "strength": o.strength, "calibration": run.calibration.as_dict() if run.calibration else None},
    )


def _run_tiled(run: _Run, scale: _Scale, image: torch.Tensor, style_loss: GramStyleLoss, tv: TVLoss
               ) -> torch.Tensor:
    """One scale in overlapping tiles (see :mod:`impasto.tiling`); progress is reported per pass."""
    n_iter = scale.iterations
    passes = 2 if n_iter >= 4 else 1

    def step_tile(piece: torch.Tensor, content_tile: torch.Tensor, n: int) -> dict[str, float]:
        objective = Objective(run.enc, _content_loss(run, content_tile.to(run.dev)), style_loss, tv, run.dev,
                              run.dtype)
        param = piece.to(run.dev).clone().contiguous().requires_grad_(True)
        opt = run.curvature.optimizer(run.options.optimizer, param)
        terms: dict[str, float] = {}
        for _ in range(n):
            terms = _step(opt, objective, param)
        run.curvature.keep(opt, param)
        piece.copy_(param.detach().to(piece.device))
        return terms

    def on_pass(p: int, terms: dict[str, float]) -> bool:
        run.step += max(1, n_iter // passes)
        run.terms = terms
        run.report(scale, f"{scale.stage} (tiled pass {p + 1}/{passes})")
        return run.stopped

    size = run.knobs.tile_size
    plan = tiling.TilePlan(tile=size, overlap=max(8, size // 8), passes=passes)
    return tiling.optimize_tiled(image.detach().cpu(), scale.content.detach().cpu(), step_tile, iterations=n_iter,
                                 plan=plan, generator=run.gen, on_pass=on_pass)


def _step(opt: Optimizer, objective: Objective, image: torch.Tensor) -> dict[str, float]:
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

    def optimizer(self, name: str, image: torch.Tensor) -> Optimizer:
        pixels = image.shape[-2] * image.shape[-1]
        return _make_optimizer(name, image, None if self.per_pixel is None else self.per_pixel * pixels)

    def keep(self, opt: Optimizer, image: torch.Tensor) -> None:
        if isinstance(opt, LBFGS) and opt.inverse_curvature is not None:
            self.per_pixel = opt.inverse_curvature / (image.shape[-2] * image.shape[-1])


def _make_optimizer(name: str, image: torch.Tensor, initial_scale: float | None = None
                    ) -> Optimizer:
    if name == "lbfgs":  # one evaluation per step() so the callback sees every iteration
        return LBFGS([image], lr=1.0, history_size=50, initial_scale=initial_scale)
    return torch.optim.Adam([image], lr=0.02)


def _style_loss(run: _Run, scale: _Scale, layer_weights: dict[str, float] | None, style_weight: float
                ) -> GramStyleLoss:
    """Blended Gram targets of the whole style images: computed once per scale, shared by all tiles."""
    layers = list(run.options.style_layers)
    with torch.no_grad(), autocast(run.dev, run.dtype):
        s_feats = [run.enc(s, layers) for s in scale.styles]
    targets = GramStyleLoss.targets_from(s_feats, run.images.blend, layers, run.knobs.normalize)
    return GramStyleLoss(targets, layer_weights, style_weight / len(layers), run.knobs.normalize)


def _content_loss(run: _Run, content: torch.Tensor) -> torch.nn.Module | None:
    content_weight = run.weights()[0]
    layers = run.options.content_layers
    if content_weight <= 0:
        return None
    with torch.no_grad(), autocast(run.dev, run.dtype):
        c_feats = run.enc(content, layers)
    per_layer = content_weight / len(layers)
    losses = [ContentLoss(n, c_feats[n], per_layer, run.knobs.normalize) for n in layers]
    return losses[0] if len(losses) == 1 else _SumContent(losses)


class _SumContent(torch.nn.Module):
    def __init__(self, losses: list[ContentLoss]) -> None:
        super().__init__()
        self.losses = torch.nn.ModuleList(losses)

    def forward(self, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        return sum(loss(feats) for loss in self.losses)  # type: ignore[return-value]
