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
    non_empty,
    path_arg,
    positive_int,
    print_json,
)
from impasto.errors import InputError

#: iterations between --preview updates when --preview-every is not given
PREVIEW_EVERY = 10


def register(sub: argparse._SubParsersAction) -> None:
    from impasto.cli.feedback import add_record_flags
    from impasto.cli.options import AUTO_STRENGTH_HELP, add_option_flags
    from impasto.stylizer import METHODS

    p = sub.add_parser("stylize", help="stylize a photo (or a folder of photos)",
                       description="Stylize CONTENT (an image or a folder) with paintings or a trained model. "
                                   + " ".join(f"{n}: {m.summary}." for n, m in METHODS.items()))
    p.add_argument("content", type=path_arg, help="content image, or a folder of images (batch)")
    p.add_argument("--method", choices=list(METHODS), default=None,
                   help="(gatys; or the method your profile's A/B answers clearly prefer: 'impasto feedback explain')")
    p.add_argument("--style", "-s", action="append", type=path_arg, default=None,
                   help="style image (repeat to blend several); needed by gatys and adain")
    p.add_argument("--style-weights", type=float_list, default=None, help="blend weights, e.g. 0.7,0.3")
    p.add_argument("--mask", type=path_arg, default=None,
                   help="adain: mask image; first --style where white, second where black")
    p.add_argument("-o", "--output", type=non_empty, default=None,
                   help="output file (default CONTENT_stylized.png beside the input; '-' for PNG on stdout); "
                        "a folder when CONTENT is a folder")
    p.add_argument("--overwrite", action="store_true", help="allow -o to name the input file itself")
    p.add_argument("--json", action="store_true", help="print one JSON object describing the run")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.add_argument("--preview", type=path_arg, default=None,
                   help="keep FILE updated with the image as it is now, atomically (gatys: from the first "
                        "coarse-scale iteration, a few seconds in, then every --preview-every), to watch a long run")
    p.add_argument("--preview-every", type=positive_int, default=None,
                   help=f"iterations between --preview updates ({PREVIEW_EVERY})")
    p.set_defaults(func=run_stylize, option_names=add_option_flags(p, extra_help=AUTO_STRENGTH_HELP))
    add_record_flags(p)

    d = sub.add_parser("demo", help="stylize a bundled photo with a bundled painting (no downloads)")
    d.add_argument("-o", "--out-dir", type=path_arg, default=Path("demo_output"))
    d.add_argument("--size", type=positive_int, default=512)
    d.add_argument("--iterations", type=positive_int, default=None)
    d.add_argument("--json", action="store_true")
    d.add_argument("--quiet", "-q", action="store_true")
    d.set_defaults(func=run_demo)


def _print_schedule(options: Any) -> None:
    from impasto.optimize import planned_schedule

    plan = planned_schedule(options, options.size)
    steps = [f"{s}px x{'<=' if i < len(plan) - 1 else ''}{n}" for i, (s, n) in enumerate(plan)]
    print("schedule: " + " -> ".join(steps) + ("  (coarse scales end when their loss settles)"
                                                 if len(plan) > 1 else ""), file=sys.stderr)


Runner = Callable[[Any, ProgressBar], tuple[Any, dict[str, Any]]]


def _method_runner(args: argparse.Namespace) -> tuple[Runner, Any]:
    """Validate the options once (and load the model); return ``run(content_tensor, bar) -> (image, record)``
    and the options it runs with (learned defaults applied)."""
    import dataclasses

    from impasto import stylizer
    from impasto.cli.feedback import StrengthChooser, learned_colour, learned_method
    from impasto.cli.options import options_from_args
    from impasto.io import load_image

    args.method, method_note = learned_method(args)  # no --method: the profile's clear favourite, or gatys
    colour, colour_note = learned_colour(args, args.method)
    chooser = StrengthChooser(args, args.method)  # --strength auto: the profile's learned strength
    names = [n for n in args.option_names if not (n == "strength" and chooser.auto)]
    options = options_from_args(args, args.method, names)
    if colour is not None:
        options = dataclasses.replace(options, preserve_color=colour)
    tastes = {k: v for k, v in (("method", method_note), ("colour", colour_note)) if v is not None}
    method = stylizer.get_method(args.method)
    stylizer.check_styles_given(args.method, bool(args.style))
    if args.mask is not None and args.method != "adain":
        raise InputError("--mask is an option of --method adain")
    stylizer.preload(options)
    styles = [load_image(s) for s in args.style or []] if method.needs_style else []
    mask = load_image(args.mask) if args.mask else None
    if args.method == "gatys" and not args.quiet and not args.json:
        _print_schedule(options)

    def run(content: Any, bar: ProgressBar) -> tuple[Any, dict[str, Any]]:
        # hand-set Gatys weights leave no strength to learn
        strength, learned = chooser.choose(content, styles) if options.strength is not None else (None, None)
        chosen = options if strength is None else dataclasses.replace(options, strength=strength)
        request = stylizer.StylizeRequest(content, styles, chosen, args.style_weights, mask)
        preview = PreviewFile(args.preview, bar) if args.preview else None
        every = (args.preview_every or PREVIEW_EVERY) if preview else 0
        out = stylizer.stylize(request, preview or bar, preview_every=every)
        record = {**out.record, **({"learned_taste": tastes} if tastes else {})}
        if learned is None:
            return out.image, record
        return out.image, {**record, "learned": learned, "pair_feature": learned["pair_feature"]}

    return run, options


class PreviewFile:
    """A progress callback that also writes each preview the engine hands it to one file (atomically, so a
    viewer never reads half an image), then passes the step on to the bar."""

    def __init__(self, path: Path, bar: ProgressBar) -> None:
        self.path, self.bar, self.written = path, bar, 0

    def __call__(self, p: Any) -> None:
        if p.preview is not None:
            from impasto.io import save_image

            save_image(p.preview, self.path)
            self.written += 1
        self.bar(p)


def run_stylize(args: argparse.Namespace) -> int:
    from impasto.cli.feedback import Recorder
    from impasto.io import encode_png, load_image, save_image

    if args.preview_every is not None and args.preview is None:  # ignoring it would look like a bug
        raise InputError("--preview-every sets how often --preview is written; give --preview FILE too")
    if args.content.is_dir():
        if args.preview is not None:
            raise InputError("--preview follows one photo's run, not a folder's")
        return _run_folder(args)
    inputs = [args.content, *(args.style or []), *([args.mask] if args.mask else [])]
    if args.preview is not None:
        check_output_path(args.preview, inputs, flag="--preview")
    if args.output == "-" and args.json:
        raise InputError("--json prints to stdout, so it cannot be combined with -o - (PNG on stdout)")
    if args.output is None:
        output: Path | None = args.content.with_name(f"{args.content.stem}_stylized.png")
    else:
        output = None if args.output == "-" else Path(args.output)
    if output is not None:
        check_output_path(output, inputs, overwrite=args.overwrite)
    recorder = Recorder.from_args(args)  # a damaged feedback database stops here, before any work
    content = load_image(args.content)
    run, _ = _method_runner(args)
    bar = ProgressBar(args.quiet)
    try:
        image, info = run(content, bar)
    finally:
        bar.close()
    png = None
    if output is None:
        png = encode_png(image)
        sys.stdout.buffer.write(png)
        sys.stdout.flush()
    else:
        save_image(image, output)
    if recorder is not None:  # after the image is safe: a failed record only warns
        files = {"content": args.content, "styles": args.style, "output": output}
        info = {**info, "run_id": recorder.record(info, files, image, png)}
        recorder.close()
    if args.json:
        print_json({"input": str(args.content), "styles": [str(s) for s in args.style or []],
                    "output": str(output) if output else "-", **info})
    elif not args.quiet and output is not None:
        print(f"wrote {output} ({info['size'][1]}x{info['size'][0]}, {info['seconds']:.2f}s, "
              f"{info['device']} {info['precision']})", file=sys.stderr)
    return 0


def _batch_settings(args: argparse.Namespace, options: Any) -> dict[str, Any]:
    """What a folder's outputs depend on: the options as resolved (typed, defaults and learned ones filled
    in, so `--size 512` and no --size are one batch), the model's bytes for a trained-network method, and
    the paintings' and mask's bytes (a file edited in place is another batch). Not the device: a batch may
    resume on another one. A strength learned per photo is not fixed in advance, so not recorded."""
    from impasto import stylizer
    from impasto.feedback.fingerprint import file_fingerprint

    resolved = stylizer.record(options)
    resolved["options"].pop("device", None)
    if "model" in resolved["options"]:  # the trained-network methods
        from impasto.methods import model_for
        from impasto.models.files import model_file

        resolved["options"]["model"] = file_fingerprint(model_file(model_for(options)))
    return {"command": "stylize", **resolved, "styles": [file_fingerprint(s) for s in args.style or []],
            "style_weights": args.style_weights, "mask": file_fingerprint(args.mask) if args.mask else None}


def _run_folder(args: argparse.Namespace) -> int:
    from impasto.cli.common import run_folder

    if args.output == "-":
        raise InputError("a folder of inputs needs an output folder, not -")
    out_dir = Path(args.output) if args.output else args.content.with_name(args.content.name + "_stylized")
    from impasto.cli.feedback import Recorder

    recorder = Recorder.from_args(args)  # a damaged feedback database stops the batch before any work
    run, options = _method_runner(args)
    records: dict[str, Any] = {}

    def process(image: Any) -> Any:
        out, records["last"] = run(image, ProgressBar(quiet=True))
        return out

    def record(photo: Path, target: Path, image: Any) -> None:  # every saved output is a recorded run
        if recorder is not None:
            recorder.record(records["last"], {"content": photo, "styles": args.style, "output": target}, image)

    try:
        return run_folder(args.content, out_dir, "_stylized", process, quiet=args.quiet, as_json=args.json,
                          settings=_batch_settings(args, options), after=record)
    finally:
        if recorder is not None:
            recorder.close()


def run_demo(args: argparse.Namespace) -> int:
    from impasto import bundled, stylizer
    from impasto.io import check_folder_target, load_image, make_folder, save_image
    from impasto.sheet import side_by_side

    check_folder_target(args.out_dir)
    make_folder(args.out_dir)
    content_path = bundled.photo(bundled.DEMO_CONTENT)
    style_path = bundled.style(bundled.DEMO_STYLE)
    content, style = load_image(content_path), load_image(style_path)
    options = stylizer.make_options("gatys", {"size": args.size, "iterations": args.iterations})
    bar = ProgressBar(args.quiet, desc="demo")
    try:
        output = stylizer.stylize(stylizer.StylizeRequest(content, [style], options), bar)
    finally:
        bar.close()
    image, result = output.image, output.record
    out = save_image(image, args.out_dir / f"{bundled.DEMO_CONTENT}_{bundled.DEMO_STYLE}.png")
    sheet = save_image(side_by_side([content, style, image], ["photo", "painting (Matisse)", "impasto"]),
                       args.out_dir / "demo_sheet.png")
    if args.json:
        print_json({"output": str(out), "sheet": str(sheet), **result})
    else:
        print(f"wrote {out} and {sheet} in {result['seconds']:.1f}s ({result['device']} {result['precision']})")
    return 0
