"""``impasto sheet``: one photo in many styles, as a labelled contact sheet."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from impasto.cli.common import ProgressBar, check_output_path, fraction, path_arg, positive_int, print_json
from impasto.errors import ImpastoError, InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sheet", help="contact sheet: one photo stylized with every painting in a folder")
    p.add_argument("content", type=path_arg)
    p.add_argument("--styles", type=path_arg, default=None,
                   help="folder of paintings (default: the bundled ones; not used by --method fast)")
    p.add_argument("--method", choices=["adain", "fast", "gatys"], default="adain")
    p.add_argument("-o", "--output", type=path_arg, default=Path("sheet.png"))
    p.add_argument("--size", type=positive_int, default=512, help="long side of each result (512)")
    p.add_argument("--iterations", type=positive_int, default=None, help="gatys only")
    p.add_argument("--strength", type=fraction, default=None, help="the method's own default unless given")
    p.add_argument("--columns", type=positive_int, default=4)
    p.add_argument("--cell", type=positive_int, default=256)
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", "-q", action="store_true")
    p.set_defaults(func=run_sheet)


def run_sheet(args: argparse.Namespace) -> int:
    from impasto import bundled, stylizer
    from impasto.io import list_images, load_image, resize_long, save_image
    from impasto.methods import load_fast_model, model_for
    from impasto.options import FastOptions
    from impasto.sheet import grid

    check_output_path(args.output, [args.content])
    content = load_image(args.content)
    content = resize_long(content, args.size) if max(content.shape[-2:]) > args.size else content
    given = {} if args.strength is None else {"strength": args.strength}
    if args.method == "gatys":
        given.update(size=args.size, iterations=args.iterations)

    def run_with(style: Path | None, **extra: object) -> object:
        options = stylizer.make_options(args.method, {**given, **extra})
        # the painting is read when its cell is made, so one bad file skips one cell, not the sheet
        return lambda c: stylizer.stylize(stylizer.StylizeRequest(
            c, [load_image(style)] if style else [], options)).image

    if args.method == "fast":
        names = [str(n) for n in load_fast_model(model_for(FastOptions()))[1]["styles"]]
        jobs = [(Path(n).stem, run_with(None, style_index=i)) for i, n in enumerate(names)]
    else:
        paths = list_images(args.styles) if args.styles else list(bundled.styles().values())
        if not paths:
            raise InputError(f"{args.styles}: no images in this folder")
        jobs = [(p.stem, run_with(p)) for p in paths]
    cells, labels, failed = [content], ["photo"], []
    bar = ProgressBar(args.quiet, desc="sheet")
    from impasto.progress import Progress

    for i, (label, run) in enumerate(jobs):
        try:
            image = run(content)
            cells.append(image)
            labels.append(label)
        except ImpastoError as exc:
            failed.append({"style": label, "error": str(exc)})
            print(f"impasto: skipped {label}: {exc}", file=sys.stderr)
        bar(Progress("sheet", i + 1, len(jobs), {}, 0.0))
    bar.close()
    if len(cells) == 1:
        raise InputError("no style could be applied; nothing to put on the sheet")
    save_image(grid(cells, columns=args.columns, cell=args.cell, labels=labels), args.output)
    if args.json:
        print_json({"output": str(args.output), "styles": labels[1:], "failed": failed})
    elif not args.quiet:
        print(f"wrote {args.output} ({len(cells) - 1} styles)", file=sys.stderr)
    return 0
