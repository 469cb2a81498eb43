"""``impasto translate``: apply a trained CycleGAN to an image or a folder."""

from __future__ import annotations

import argparse
import sys

from impasto.cli.common import add_run_options, check_output_path, int_in, path_arg, print_json, run_folder
from impasto.errors import InputError
from impasto.options import MAX_SIDE


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("translate", help="translate images with a trained CycleGAN (A->B or B->A)")
    p.add_argument("input", type=path_arg, help="an image, or a folder of images")
    p.add_argument("--model", type=path_arg, required=True,
                   help="CycleGAN run folder or .safetensors file, or the name of a bundled CycleGAN")
    p.add_argument("--direction", choices=["a2b", "b2a"], default="a2b")
    p.add_argument("-o", "--output", type=path_arg, default=None,
                   help="output image (default INPUT_a2b.png), or a folder when INPUT is a folder")
    p.add_argument("--tile", type=int_in(128, 1 << 20), default=1024,
                   help="run in tiles above this many pixels a side (128 or more; larger than the photo: no tiles)")
    p.add_argument("--size", type=int_in(16, MAX_SIDE), default=None,
                   help="resize to this long side first (default: as given). A CycleGAN paints strokes at the "
                   "scale it was trained at, so a large photo at its own size keeps the photo's look")
    p.add_argument("--shifts", type=int_in(1, 4), default=4,
                   help="average the translations of the photo shifted by 0..N-1 px each way (N*N passes; 4, the "
                   "default, covers every phase of the generator's 4 px grid and removes its mosaic; 1 = one pass)")
    p.add_argument("--overwrite", action="store_true", help="allow -o to name the input file itself")
    add_run_options(p)
    p.set_defaults(func=run_translate)


def run_translate(args: argparse.Namespace) -> int:
    from impasto.io import load_image, resize_long, save_image
    from impasto.models.cyclegan import KIND
    from impasto.models.files import read_meta, short
    from impasto.translate import resolve_model, translate

    path = resolve_model(args.model)  # a path, or a bundled model's name
    kind, _ = read_meta(path)  # refuses another kind of model before any work
    if kind != KIND:
        raise InputError(f"{path}: is a {short(kind, 40)} model, not a CycleGAN (train one with "
                         "'impasto train cyclegan')")

    def run(image):
        if args.size is not None:
            image = resize_long(image, args.size)
        return translate(image, path, direction=args.direction, tile=args.tile, device=args.device,
                         precision=args.precision, shifts=args.shifts)

    suffix = f"_{args.direction}"
    if args.input.is_dir():
        out_dir = args.output or args.input.with_name(args.input.name + suffix)
        from impasto.feedback.fingerprint import file_fingerprint

        settings = {"command": "translate", "model": file_fingerprint(path), "direction": args.direction,
                    "size": args.size, "tile": args.tile, "precision": args.precision, "shifts": args.shifts}
        return run_folder(args.input, out_dir, suffix, lambda img: run(img)[0], quiet=args.quiet, as_json=args.json,
                          settings=settings)
    output = args.output or args.input.with_name(f"{args.input.stem}{suffix}.png")
    check_output_path(output, [args.input], overwrite=args.overwrite)
    image, info = run(load_image(args.input))
    save_image(image, output)
    if args.json:
        print_json({"input": str(args.input), "output": str(output), **info})
    elif not args.quiet:
        print(f"wrote {output} ({info['from']} -> {info['to']}, {info['seconds']:.2f}s)", file=sys.stderr)
    return 0
