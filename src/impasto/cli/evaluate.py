"""``impasto evaluate``: metrics for stylized images against their contents and styles."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from impasto.cli.common import positive_int, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="content/style losses, SSIM, PSNR, perceptual distance, vgg-fd; HTML report")
    p.add_argument("--content", type=Path, required=True, help="folder of content images")
    p.add_argument("--style", type=Path, required=True, help="folder of style images")
    p.add_argument("--stylized", type=Path, required=True, help="folder of stylized images")
    p.add_argument("--pairs", type=Path, default=None, help="CSV with columns content,style,stylized")
    p.add_argument("--size", type=positive_int, default=512, help="evaluate at this long side (512)")
    p.add_argument("-o", "--output", type=Path, default=None, help="report folder (report.json, index.html)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from impasto.errors import InputError
    from impasto.report import evaluate, find_pairs, write_report

    for name in ("content", "style", "stylized"):
        if not getattr(args, name).is_dir():
            raise InputError(f"--{name} {getattr(args, name)}: not a folder")
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
