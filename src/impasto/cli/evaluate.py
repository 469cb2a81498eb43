"""``impasto evaluate``: metrics for stylized images against their contents and styles."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from impasto.cli.common import int_in, path_arg, print_json
from impasto.options import MAX_SIDE


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="content/style losses, SSIM, PSNR, perceptual distance, vgg-fd; HTML report")
    p.add_argument("--content", type=path_arg, required=True, help="folder of content images")
    p.add_argument("--style", type=path_arg, required=True, help="folder of style images")
    p.add_argument("--stylized", type=path_arg, required=True, help="folder of stylized images")
    p.add_argument("--pairs", type=path_arg, default=None, help="CSV with columns content,style,stylized")
    p.add_argument("--size", type=int_in(16, MAX_SIDE), default=512, help="evaluate at this long side (512)")
    p.add_argument("-o", "--output", type=path_arg, default=None, help="report folder (report.json, index.html)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)

    c = sub.add_parser("compare", help="run several methods/settings on the same pairs, side by side")
    c.add_argument("photos", type=path_arg, nargs="*", help="content images or folders (or --content)")
    c.add_argument("--content", type=path_arg, nargs="+", default=[], help="content images or folders")
    c.add_argument("--style", "-s", type=path_arg, nargs="+", action="extend", required=True,
                   help="style images or folders (repeatable)")
    c.add_argument("--method", action="append", default=[], choices=["gatys", "fast", "adain"],
                   help="a method with its default options (repeatable)")
    c.add_argument("--setting", action="append", default=[],
                   help="NAME:method=M,key=value,... with the method's options (repeatable)")
    c.add_argument("--eval-size", type=int_in(16, MAX_SIDE), default=512, help="evaluate at this long side (512)")
    c.add_argument("-o", "--output", type=path_arg, default=Path("compare_output"),
                   help="output folder (compare_output)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=run_compare)
    from impasto.cli.feedback import add_record_flags

    add_record_flags(c)


def run(args: argparse.Namespace) -> int:
    from impasto.errors import InputError
    from impasto.io import check_folder_target
    from impasto.report import evaluate, find_pairs, write_report

    for name in ("content", "style", "stylized"):
        if not getattr(args, name).is_dir():
            raise InputError(f"--{name} {getattr(args, name)}: not a folder")
    if args.output is not None:
        check_folder_target(args.output)  # the report is a folder
        taken = [n for n in ("content", "style", "stylized") if getattr(args, n).resolve() == args.output.resolve()]
        if taken:  # its thumbnails would join the images the next evaluation reads
            raise InputError(f"{args.output}: is the --{taken[0]} folder; give the report a folder of its own (-o)")
    result = evaluate(find_pairs(args.content, args.style, args.stylized, args.pairs), size=args.size)
    if args.output is not None:
        files = write_report(result, args.output)
        result["report"] = {k: str(v) for k, v in files.items()}
    if args.json:
        print_json(result)
    else:
        agg = result["aggregate"]
        print("  ".join(f"{k}={v:.4g}" for k, v in agg.items()), file=sys.stderr)
        if args.output is not None:
            print(f"report: {result['report']['html']}", file=sys.stderr)
    return 0


def _expand(paths: list[Path]) -> list[Path]:
    from impasto.errors import InputError
    from impasto.io import list_images

    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += list_images(p)
        elif p.is_file():
            out.append(p)
        else:
            raise InputError(f"{p}: no such file or folder")
    return out


def run_compare(args: argparse.Namespace) -> int:
    from impasto.compare import run_compare as compare
    from impasto.errors import InputError

    contents = _expand([*args.photos, *args.content])
    if not contents:
        raise InputError("give content images (positional or --content)")
    styles = _expand(args.style)
    if not styles:
        raise InputError(f"no style images in {', '.join(map(str, args.style))}")
    settings = [f"{m}:method={m}" for m in args.method] + list(args.setting)
    from impasto.cli.feedback import Recorder

    recorder = Recorder.from_args(args)  # a damaged feedback database stops here, before any work

    def record(run: dict, content: Path, style: Path, output: Path, image: object) -> None:
        if recorder is not None:  # every image compare writes is a recorded run, rateable like any other
            recorder.record(run, {"content": content, "styles": [style], "output": output}, image)

    try:
        summary = compare(contents, styles, settings, args.output, args.eval_size, record)
    finally:
        if recorder is not None:
            recorder.close()
    if args.json:
        print_json(summary)
    else:
        for name, s in summary["settings"].items():
            agg = s["aggregate"]
            print(f"{name:<16} {s['mean_seconds']:7.2f}s  content={agg['content_loss']:.3g} "
                  f"style={agg['style_loss']:.3g} ssim={agg['ssim_luminance']:.3f}", file=sys.stderr)
        print(f"side by side: {summary['sheet']}", file=sys.stderr)
    return 0
