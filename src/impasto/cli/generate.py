"""``impasto generate``: sample a trained DCGAN or VAE; VAE latent interpolation."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from impasto.cli.common import check_output_path, int_in, path_arg, print_json
from impasto.errors import InputError

#: at most this many samples per call, and a grid of at most this many pixels: past them memory runs out
MAX_IMAGES = 4096
MAX_GRID_PIXELS = 64_000_000


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="draw images from a trained DCGAN or VAE")
    p.add_argument("--model", type=path_arg, required=True, help="run folder or .safetensors (dcgan or vae)")
    p.add_argument("-n", type=int_in(1, MAX_IMAGES), default=None, help=f"how many images (64; at most {MAX_IMAGES})")
    p.add_argument("--seed", type=int_in(0, 2**63 - 1), default=None, help="same seed, same images (0)")
    p.add_argument("-o", "--output", type=path_arg, default=None, help="grid image (default generated.png)")
    p.add_argument("--out-dir", type=path_arg, default=None, help="also write each image as a file here")
    p.add_argument("--columns", type=int_in(1, MAX_IMAGES), default=None,
                   help="grid columns (8; with --interpolate, all the points in one row)")
    p.add_argument("--cell", type=int_in(8, 1024), default=None,
                   help="grid cell size in pixels (default: the model's size, at least 64; at most 1024)")
    p.add_argument("--interpolate", nargs=2, type=path_arg, metavar=("A", "B"), default=None,
                   help="VAE: decode the latent line from image A to image B")
    p.add_argument("--steps", type=int_in(2, 256), default=None,
                   help="points on the interpolation line (8; 2 to 256)")
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


def _plan(args: argparse.Namespace) -> tuple[int, int]:
    """(images, grid columns), refusing the flags of the other mode: sampling takes -n and --seed,
    interpolation --steps; ignoring one would look like a bug."""
    if args.interpolate:
        if args.n is not None or args.seed is not None:
            raise InputError("--interpolate decodes the --steps points between two images; -n and --seed are "
                             "for sampling")
        steps = args.steps or 8
        return steps, args.columns or steps
    if args.steps is not None:
        raise InputError("--steps is the number of points of --interpolate; give -n for samples")
    return args.n or 64, args.columns or 8


def _clear_of_earlier_runs(out_dir: Path | None) -> None:
    """A folder that holds numbered images already: this run would replace some and leave others beside
    its own, and a write that fails part way could not give the replaced ones back."""
    if out_dir is None or not out_dir.is_dir():
        return
    earlier = sorted(p.name for p in out_dir.glob("[0-9][0-9][0-9][0-9][0-9].png"))
    if earlier:
        raise InputError(f"{out_dir}: holds {earlier[0]}{' ... ' + earlier[-1] if len(earlier) > 1 else ''} from "
                         "an earlier run; give a new or empty folder (or delete those)")


def _write(images: Any, sheet: Any, output: Path, out_dir: Path | None) -> list[str]:
    """The files under ``out_dir``, then the grid: all or nothing, so that a write that fails part way (a
    full disk) leaves none of this call's files and the error line's "nothing was written" holds."""
    from impasto.io import make_folder, save_image

    made = out_dir is not None and not out_dir.exists()
    written: list[Path] = []
    try:
        if out_dir is not None:
            make_folder(out_dir)
            for i, img in enumerate(images.split(1)):
                written.append(save_image(img, out_dir / f"{i:05d}.png"))
        save_image(sheet, output)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        if made and out_dir is not None and out_dir.is_dir() and not any(out_dir.iterdir()):
            out_dir.rmdir()
        raise
    return [str(p) for p in written]


def run_generate(args: argparse.Namespace) -> int:
    from impasto import generate
    from impasto.io import check_folder_target, load_image
    from impasto.sheet import grid

    output = args.output or Path("generated.png")
    check_output_path(output, args.interpolate or [])
    count, columns = _plan(args)
    if args.out_dir is not None:
        check_folder_target(args.out_dir)
        _clear_of_earlier_runs(args.out_dir)
    model = generate.load(args.model)
    cell = _checked_cell(args, int(model.meta["size"]), count, columns)  # before any sampling
    if args.interpolate:
        a, b = (load_image(p) for p in args.interpolate)
        images = generate.interpolate(model, a, b, count)
        info = {"kind": "vae", "interpolate": [str(p) for p in args.interpolate], "steps": count}
    else:
        seed = args.seed or 0
        images, meta = generate.sample(model, count, seed=seed)
        info = {"kind": meta["kind"], "n": count, "seed": seed, "size": meta["size"]}
    written = _write(images, grid(list(images.split(1)), columns=columns, cell=cell), output, args.out_dir)
    if args.json:
        print_json({"grid": str(output), "files": written, **info})
    elif not args.quiet:
        print(f"wrote {output} ({images.shape[0]} images)" + (f" and {len(written)} files" if written else ""),
              file=sys.stderr)
    return 0
