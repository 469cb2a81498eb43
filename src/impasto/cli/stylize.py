"""``impasto stylize`` and ``impasto demo``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from impasto.cli.common import (
    ProgressBar,
    check_output_path,
    float_list,
    fraction,
    layer_weights,
    nonneg_float,
    positive_int,
    print_json,
)
from impasto.errors import InputError


def _add_gatys_options(p: argparse.ArgumentParser) -> None:
    from impasto import optimize as o

    g = p.add_argument_group("Gatys optimization")
    g.add_argument("--size", type=positive_int, default=512, help="long side of the output in pixels (512)")
    g.add_argument("--iterations", type=positive_int, default=None,
                   help="iterations at the first scale; each larger scale gets half (lbfgs 200, adam 400)")
    g.add_argument("--content-weight", type=nonneg_float, default=None,
                   help=f"hand-set weights instead of --strength (defaults {o.DEFAULT_CONTENT_WEIGHT} and "
                        f"{o.DEFAULT_STYLE_WEIGHT} once either is given)")
    g.add_argument("--style-weight", type=nonneg_float, default=None)
    g.add_argument("--layer-weights", type=layer_weights, default=None,
                   help="per style layer, e.g. relu1_1=2,relu5_1=0.5 (what a calibrated run reports)")
    g.add_argument("--tv-weight", type=nonneg_float, default=o.DEFAULT_TV_WEIGHT)
    g.add_argument("--content-layers", type=lambda s: s.split(","), default=list(o.DEFAULT_CONTENT_LAYERS),
                   help="comma-separated VGG layer names (relu4_2)")
    g.add_argument("--style-layers", type=lambda s: s.split(","), default=list(o.DEFAULT_STYLE_LAYERS),
                   help="comma-separated VGG layer names (relu1_1,...,relu5_1)")
    g.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs")
    g.add_argument("--init", choices=["content", "noise", "style"], default="content")
    g.add_argument("--style-scale", type=nonneg_float, default=1.0, help="style image size relative to the output")
    g.add_argument("--preserve-color", choices=["luminance", "histogram"], default=None)
    g.add_argument("--no-multiscale", action="store_true", help="optimize at the final size only")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", default="auto", help="auto, cpu or cuda")
    g.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto")
    g.add_argument("--backbone", choices=["vgg16", "vgg19"], default="vgg16")
    g.add_argument("--weights", default=None, help="weights entry (see 'impasto weights list')")
    g.add_argument("--pooling", choices=["max", "avg"], default="max")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stylize", help="stylize a photo (or a folder of photos)",
                       description="Stylize CONTENT (an image or a folder) with paintings or a trained model.")
    p.add_argument("content", type=Path, help="content image, or a folder of images (batch)")
    p.add_argument("--method", choices=["gatys", "fast", "adain"], default="gatys",
                   help="gatys: optimize pixels (any style); fast: a trained network (--model); "
                        "adain: any style image through a trained decoder")
    p.add_argument("--style", "-s", action="append", type=Path, default=None,
                   help="style image (repeat to blend several); needed by gatys")
    p.add_argument("--style-weights", type=float_list, default=None, help="blend weights, e.g. 0.7,0.3")
    p.add_argument("-o", "--output", default=None,
                   help="output file (default CONTENT_stylized.png beside the input; '-' for PNG on stdout); "
                        "a folder when CONTENT is a folder")
    f = p.add_argument_group("fast and adain (trained networks)")
    f.add_argument("--model", type=Path, default=None,
                   help="a .safetensors model (default: the bundled 'fast4' or 'adain')")
    f.add_argument("--mask", type=Path, default=None,
                   help="adain: mask image; first --style where white, second where black")
    f.add_argument("--style-index", type=int, default=None, help="which of the model's styles (0)")
    f.add_argument("--style-mix", default=None, help="blend the model's styles, e.g. 0:0.5,2:0.5")
    f.add_argument("--strength", type=fraction, default=None,
                   help="0 keeps the photo, 1 full style. fast/adain: interpolation (default 1); gatys: weights "
                        "calibrated on the pair so a strength means the same on any pair (default 0.5)")
    f.add_argument("--max-size", type=positive_int, default=None, help="cap the long side (default: full size)")
    _add_gatys_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON object describing the run")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=run_stylize)

    d = sub.add_parser("demo", help="stylize a bundled photo with a bundled painting (no downloads)")
    d.add_argument("-o", "--out-dir", type=Path, default=Path("demo_output"))
    d.add_argument("--size", type=positive_int, default=512)
    d.add_argument("--iterations", type=positive_int, default=None)
    d.add_argument("--json", action="store_true")
    d.add_argument("--quiet", "-q", action="store_true")
    d.set_defaults(func=run_demo)


def _gatys_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Hand-set weights if any is given, else a calibrated --strength (0.5 by default)."""
    from impasto import optimize as o

    hand_set = args.content_weight is not None or args.style_weight is not None or args.layer_weights is not None
    if hand_set and args.strength is not None:
        raise InputError("give --strength or hand-set weights (--content-weight/--style-weight/--layer-weights), "
                         "not both")
    return dict(
        strength=None if hand_set else (0.5 if args.strength is None else args.strength),
        content_weight=o.DEFAULT_CONTENT_WEIGHT if args.content_weight is None else args.content_weight,
        style_weight=o.DEFAULT_STYLE_WEIGHT if args.style_weight is None else args.style_weight,
        layer_weights=args.layer_weights, tv_weight=args.tv_weight,
        content_layers=args.content_layers, style_layers=args.style_layers, optimizer=args.optimizer,
        iterations=args.iterations, size=args.size, style_scale=args.style_scale, init=args.init,
        preserve_color=args.preserve_color or False, seed=args.seed, device=args.device,
        precision=args.precision, backbone=args.backbone, weights=args.weights, pooling=args.pooling,
        multiscale=not args.no_multiscale,
    )


def _ff_strength(args: argparse.Namespace) -> float:
    return 1.0 if args.strength is None else args.strength


def _method_runner(args: argparse.Namespace) -> Callable[[Any, ProgressBar], tuple[Any, dict[str, Any]]]:
    """Validate method options once and return ``run(content_tensor, bar) -> (image, info)``."""
    from impasto.io import load_image
    from impasto.methods import METHODS, load_fast_model

    if args.method == "gatys":
        if not args.style:
            raise InputError("--method gatys needs at least one --style image")
        if args.style_weights is not None and len(args.style_weights) != len(args.style):
            raise InputError(f"{len(args.style)} --style given but {len(args.style_weights)} --style-weights")
        styles = [load_image(s) for s in args.style]
        kwargs = _gatys_kwargs(args)
        if not args.quiet and not args.json:
            from impasto.optimize import DEFAULT_ITERATIONS, scale_schedule

            iters = args.iterations or DEFAULT_ITERATIONS[args.optimizer]
            plan = scale_schedule(args.size, iters, multiscale=not args.no_multiscale)
            steps = [f"{s}px x{'<=' if i < len(plan) - 1 else ''}{n}" for i, (s, n) in enumerate(plan)]
            print("schedule: " + " -> ".join(steps) + ("  (coarse scales end when their loss settles)"
                                                         if len(plan) > 1 else ""), file=sys.stderr)
        return lambda content, bar: METHODS["gatys"](content, styles, style_weights=args.style_weights,
                                                      callback=bar, **kwargs)
    if args.method == "adain":
        from impasto.methods import load_adain_model

        load_adain_model(args.model)  # fail early on a missing/corrupt decoder
        styles = [load_image(s) for s in args.style or []]
        if not styles:
            raise InputError("--method adain needs at least one --style image")
        mask = load_image(args.mask) if args.mask else None
        return lambda content, bar: METHODS["adain"](
            content, styles, model=args.model, style_weights=args.style_weights, strength=_ff_strength(args),
            preserve_color=args.preserve_color, mask=mask, device=args.device, precision=args.precision)
    if args.model is None:
        from impasto import bundled

        args.model = bundled.model("fast4")
    load_fast_model(args.model)  # fail before any work on a missing or corrupt model
    return lambda content, bar: METHODS["fast"](
        content, args.model, style_index=args.style_index, style_mix=args.style_mix, strength=_ff_strength(args),
        preserve_color=args.preserve_color, max_size=args.max_size, device=args.device, precision=args.precision)


def run_stylize(args: argparse.Namespace) -> int:
    from impasto.io import encode_png, load_image, save_image

    if args.content.is_dir():
        return _run_folder(args)
    if args.output == "-" and args.json:
        raise InputError("--json prints to stdout, so it cannot be combined with -o - (PNG on stdout)")
    if args.output is None:
        output: Path | None = args.content.with_name(f"{args.content.stem}_stylized.png")
    else:
        output = None if args.output == "-" else Path(args.output)
    if output is not None:
        check_output_path(output)
    content = load_image(args.content)
    run = _method_runner(args)
    bar = ProgressBar(args.quiet)
    try:
        image, info = run(content, bar)
    finally:
        bar.close()
    if output is None:
        sys.stdout.buffer.write(encode_png(image))
        sys.stdout.flush()
    else:
        save_image(image, output)
    if args.json:
        print_json({"input": str(args.content), "styles": [str(s) for s in args.style or []],
                    "output": str(output) if output else "-", **info})
    elif not args.quiet and output is not None:
        print(f"wrote {output} ({info['size'][1]}x{info['size'][0]}, {info['seconds']:.2f}s, "
              f"{info['device']} {info['precision']})", file=sys.stderr)
    return 0


def _run_folder(args: argparse.Namespace) -> int:
    from impasto.cli.common import run_folder

    if args.output == "-":
        raise InputError("a folder of inputs needs an output folder, not -")
    out_dir = Path(args.output) if args.output else args.content.with_name(args.content.name + "_stylized")
    run = _method_runner(args)
    return run_folder(args.content, out_dir, "_stylized", lambda img: run(img, ProgressBar(quiet=True))[0],
                      quiet=args.quiet, as_json=args.json)


def run_demo(args: argparse.Namespace) -> int:
    from impasto import bundled
    from impasto.io import load_image, save_image
    from impasto.optimize import stylize
    from impasto.sheet import side_by_side

    if args.out_dir.exists() and not args.out_dir.is_dir():
        raise InputError(f"{args.out_dir}: exists and is not a directory")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    content_path = bundled.photo(bundled.DEMO_CONTENT)
    style_path = bundled.style(bundled.DEMO_STYLE)
    content, style = load_image(content_path), load_image(style_path)
    bar = ProgressBar(args.quiet, desc="demo")
    try:
        image, result = stylize(content, style, size=args.size, iterations=args.iterations, strength=0.5,
                                callback=bar)
    finally:
        bar.close()
    out = save_image(image, args.out_dir / f"{bundled.DEMO_CONTENT}_{bundled.DEMO_STYLE}.png")
    sheet = save_image(side_by_side([content, style, image], ["photo", "painting (Matisse)", "impasto"]),
                       args.out_dir / "demo_sheet.png")
    if args.json:
        print_json({"output": str(out), "sheet": str(sheet), **result.as_dict()})
    else:
        print(f"wrote {out} and {sheet} in {result.seconds:.1f}s ({result.device} {result.precision})")
    return 0
