"""``impasto generate``: sample a trained DCGAN or VAE; VAE latent interpolation."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from impasto.cli.common import check_output_path, int_in, print_json
from impasto.errors import InputError

#: at most this many samples per call, and a grid of at most this many pixels: past them memory runs out
MAX_IMAGES = 4096
MAX_GRID_PIXELS = 64_000_000


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="draw images from a trained DCGAN or VAE")
    p.add_argument("--model", type=Path, required=True, help="run folder or .safetensors (dcgan or vae)")
    p.add_argument("-n", type=int_in(1, MAX_IMAGES), default=64, help=f"how many images (64; at most {MAX_IMAGES})")
    p.add_argument("--seed", type=int_in(0, 2**63 - 1), default=0, help="same seed, same images")
    p.add_argument("-o", "--output", type=Path, default=None, help="grid image (default generated.png)")
    p.add_argument("--out-dir", type=Path, default=None, help="also write each image as a file here")
    p.add_argument("--columns", type=int_in(1, MAX_IMAGES), default=8)
    p.add_argument("--cell", type=int_in(8, 1024), default=None,
                   help="grid cell size in pixels (default: the model's size, at least 64; at most 1024)")
    p.add_argument("--interpolate", nargs=2, type=Path, metavar=("A", "B"), default=None,
                   help="VAE: decode the latent line from image A to image B")
    p.add_argument("--steps", type=int_in(2, 256), default=8, help="points on the interpolation line (8; 2 to 256)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", "-q", action="store_true")
    p.set_defaults(func=run_generate)


def _checked_cell(args: argparse.Namespace, size: int, count: int, columns: int) -> int:
    """The grid's cell size (--cell, else the model's ``size`` and at least 64), refused when the whole
    grid would be over MAX_GRID_PIXELS."""
    cell = args.cell or max(64, size)
    cols = min(columns, count)
    rows = -(-count // cols)
    if cols * rows * (cell + 4) ** 2 > MAX_GRID_PIXELS:
        raise InputError(f"a grid of {count} cells of {cell} px, {cols} a row, is over {MAX_GRID_PIXELS / 1e6:g} "
                         "megapixels; ask for fewer images (-n), a smaller --cell or fewer --columns")
    return cell


def run_generate(args: argparse.Namespace) -> int:
    from impasto import generate
    from impasto.io import check_folder_target, load_image, make_folder, save_image
    from impasto.sheet import grid

    output = args.output or Path("generated.png")
    check_output_path(output, args.interpolate or [])
    if args.out_dir is not None:
        check_folder_target(args.out_dir)
    count, columns = (args.steps, args.steps) if args.interpolate else (args.n, args.columns)
    model = generate.load(args.model)
    cell = _checked_cell(args, int(model.meta["size"]), count, columns)  # before any sampling
    if args.interpolate:
        a, b = (load_image(p) for p in args.interpolate)
        images = generate.interpolate(model, a, b, args.steps)
        info = {"kind": "vae", "interpolate": [str(p) for p in args.interpolate], "steps": args.steps}
    else:
        images, meta = generate.sample(model, args.n, seed=args.seed)
        info = {"kind": meta["kind"], "n": args.n, "seed": args.seed, "size": meta["size"]}
    save_image(grid(list(images.split(1)), columns=columns, cell=cell), output)
    written = []
    if args.out_dir is not None:
        make_folder(args.out_dir)
        for i, img in enumerate(images.split(1)):
            written.append(str(save_image(img, args.out_dir / f"{i:05d}.png")))
    if args.json:
        print_json({"grid": str(output), "files": written, **info})
    elif not args.quiet:
        print(f"wrote {output} ({images.shape[0]} images)" + (f" and {len(written)} files" if written else ""),
              file=sys.stderr)
    return 0
