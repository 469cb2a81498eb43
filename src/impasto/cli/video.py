"""``impasto video IN.mp4 --method adain|fast ... -o OUT.mp4``: frame by frame, smoothed, audio kept."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from impasto.cli.common import add_run_options, fraction, positive_int, print_json
from impasto.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("video", help="stylize a video (adain or fast), with temporal smoothing")
    p.add_argument("input", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True, help=".mp4, .mkv or .mov")
    p.add_argument("--method", choices=["adain", "fast"], default="adain")
    p.add_argument("--style", "-s", action="append", type=Path, default=None, help="style image(s) for adain")
    p.add_argument("--model", type=Path, default=None, help="default: the bundled model of the method")
    p.add_argument("--style-index", type=int, default=None, help="fast: which learned style")
    p.add_argument("--strength", type=fraction, default=1.0)
    p.add_argument("--smoothing", type=fraction, default=0.6, help="temporal smoothing 0..1 (0 = off)")
    p.add_argument("--max-frames", type=positive_int, default=None)
    add_run_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from impasto.io import load_image
    from impasto.methods import load_adain_model, load_fast_model, stylize_adain, stylize_fast
    from impasto.video import stylize_video

    common = dict(strength=args.strength, device=args.device, precision=args.precision)
    if args.method == "adain":
        if not args.style:
            raise InputError("--method adain needs --style")
        styles = [load_image(s) for s in args.style]
        load_adain_model(args.model)

        def fn(frame):
            return stylize_adain(frame, styles, model=args.model, **common)[0]
    else:
        from impasto import bundled

        model = args.model or bundled.model("fast4")
        load_fast_model(model)

        def fn(frame):
            return stylize_fast(frame, model, style_index=args.style_index, **common)[0]

    from tqdm import tqdm

    bar = tqdm(desc="video", unit="frame", file=sys.stderr, disable=args.quiet)

    def progress(n: int, total: int) -> None:
        bar.total = total or None
        bar.update(n - bar.n)

    try:
        report = stylize_video(args.input, args.output, fn, smoothing=args.smoothing, max_frames=args.max_frames,
                               progress=progress)
    finally:
        bar.close()
    if args.json:
        print_json(report)
    elif not args.quiet:
        print(f"wrote {args.output}: {report['frames']} frames; flicker vs original "
              f"{report['flicker_ratio_raw']:.2f}x raw, {report['flicker_ratio_smoothed']:.2f}x smoothed",
              file=sys.stderr)
    return 0
