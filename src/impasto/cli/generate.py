"""``impasto generate``: sample a trained DCGAN or VAE; VAE latent interpolation."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from impasto.cli.common import check_output_path, positive_int, print_json
from impasto.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="draw images from a trained DCGAN or VAE")
    p.add_argument("--model", type=Path, required=True, help="run folder or .safetensors (dcgan or vae)")
    p.add_argument("-n", type=positive_int, default=64, help="how many images (64)")
    p.add_argument("--seed", type=int, default=0, help="same seed, same images")
    p.add_argument("-o", "--output", type=Path, default=None, help="grid image (default generated.png)")
    p.add_argument("--out-dir", type=Path, default=None, help="also write each image as a file here")
    p.add_argument("--columns", type=positive_int, default=8)
    p.add_argument("--cell", type=positive_int, default=None, help="grid cell size in pixels (model size, >= 64)")
    p.add_argument("--interpolate", nargs=2, type=Path, metavar=("A", "B"), default=None,
                   help="VAE: decode the latent line from image A to image B")
    p.add_argument("--steps", type=positive_int, default=8, help="points on the interpolation line (8)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", "-q", action="store_true")
    p.set_defaults(func=run_generate)


def run_generate(args: argparse.Namespace) -> int:
    from impasto import generate
    from impasto.io import load_image, save_image
    from impasto.sheet import grid

    output = args.output or Path("generated.png")
    check_output_path(output)
    if args.out_dir is not None and args.out_dir.exists() and not args.out_dir.is_dir():
        raise InputError(f"{args.out_dir}: exists and is not a folder")
    if args.interpolate:
        a, b = (load_image(p) for p in args.interpolate)
        images = generate.interpolate(args.model, a, b, args.steps)
        info = {"kind": "vae", "interpolate": [str(p) for p in args.interpolate], "steps": args.steps}
        columns = args.steps
    else:
        images, meta = generate.sample(args.model, args.n, seed=args.seed)
        info = {"kind": meta["kind"], "n": args.n, "seed": args.seed, "size": meta["size"]}
        columns = args.columns
    cell = args.cell or max(64, images.shape[-1])
    save_image(grid(list(images.split(1)), columns=columns, cell=cell), output)
    written = []
    if args.out_dir is not None:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(images.split(1)):
            written.append(str(save_image(img, args.out_dir / f"{i:05d}.png")))
    if args.json:
        print_json({"grid": str(output), "files": written, **info})
    elif not args.quiet:
        print(f"wrote {output} ({images.shape[0]} images)" + (f" and {len(written)} files" if written else ""),
              file=sys.stderr)
    return 0
