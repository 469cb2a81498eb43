"""``impasto video IN.mp4 --method adain|fast ... -o OUT.mp4``: frame by frame, smoothed, audio kept."""

from __future__ import annotations

import argparse
import sys

from impasto.cli.common import float_list, path_arg, positive_int, print_json

METHODS = ("adain", "fast")


def register(sub: argparse._SubParsersAction) -> None:
    from impasto.cli.common import fraction
    from impasto.cli.options import add_option_flags

    p = sub.add_parser("video", help="stylize a video (adain or fast), with temporal smoothing")
    p.add_argument("input", type=path_arg)
    p.add_argument("-o", "--output", type=path_arg, required=True, help=".mp4, .mkv or .mov")
    p.add_argument("--method", choices=list(METHODS), default="adain", help="(adain)")
    p.add_argument("--style", "-s", action="append", type=path_arg, default=None, help="style image(s) for adain")
    p.add_argument("--style-weights", type=float_list, default=None,
                   help="blend weights of several --style images, e.g. 0.7,0.3")
    p.add_argument("--smoothing", type=fraction, default=0.6, help="temporal smoothing 0..1 (0 = off)")
    p.add_argument("--max-frames", type=positive_int, default=None)
    p.add_argument("--json", action="store_true", help="print one JSON object describing the run")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    p.set_defaults(func=run, option_names=add_option_flags(p, METHODS))
    from impasto.cli.feedback import add_record_flags

    add_record_flags(p)


def run(args: argparse.Namespace) -> int:
    from impasto import stylizer
    from impasto.cli.feedback import Recorder
    from impasto.cli.options import options_from_args
    from impasto.io import load_image
    from impasto.video import stylize_video

    options = options_from_args(args, args.method, args.option_names)
    recorder = Recorder.from_args(args)  # a damaged feedback database stops here, before any frame
    stylizer.check_styles_given(args.method, bool(args.style))
    stylizer.preload(options)
    styles = [load_image(s) for s in args.style or []]

    def fn(frame):
        return stylizer.stylize(stylizer.StylizeRequest(frame, styles, options, args.style_weights)).image

    from tqdm import tqdm

    bars: list[tqdm] = []  # made at the first frame: a file that is not a video fails before any bar

    def progress(n: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(desc="video", unit="frame", file=sys.stderr, disable=args.quiet))
        bars[0].total = total or None
        bars[0].update(n - bars[0].n)

    try:
        report = stylize_video(args.input, args.output, fn, smoothing=args.smoothing, max_frames=args.max_frames,
                               max_size=stylizer.output_size(options), progress=progress)
    finally:
        for bar in bars:
            bar.close()
    if recorder is not None:  # one run for the whole video, fingerprinted by the files
        record = {**stylizer.record(options), "seconds": report.get("seconds"), "video": report}
        report["run_id"] = recorder.record(record, {"content": args.input, "styles": args.style,
                                                    "output": args.output}, None)
        recorder.close()
    if args.json:
        print_json(report)
    elif not args.quiet:
        print(f"wrote {args.output}: {report['frames']} frames; flicker vs original "
              f"{report['flicker_ratio_raw']:.2f}x raw, {report['flicker_ratio_smoothed']:.2f}x smoothed",
              file=sys.stderr)
    return 0
