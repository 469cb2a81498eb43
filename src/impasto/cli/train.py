"""``impasto train fast-style|...``: every trainer shares the loop options (steps, batch, resume...)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from impasto.cli.common import ProgressBar, nonneg_float, positive_int, print_json
from impasto.errors import InputError


def add_loop_options(p: argparse.ArgumentParser, *, steps: int, batch: int, size: int) -> None:
    g = p.add_argument_group("training loop (shared by every trainer)")
    g.add_argument("--out", type=Path, required=True,
                   help="final model: FILE.safetensors, or a run folder RUN (model in RUN/model.safetensors)")
    g.add_argument("--run-dir", type=Path, default=None, help="checkpoints, log.jsonl, loss.png and samples "
                   "(default: RUN itself, or FILE without suffix + '_run')")
    g.add_argument("--size", type=positive_int, default=size, help=f"training crop size ({size})")
    g.add_argument("--steps", type=positive_int, default=steps, help=f"optimizer steps ({steps})")
    g.add_argument("--batch", type=positive_int, default=batch, help=f"global batch over all processes ({batch})")
    g.add_argument("--grad-accum", type=positive_int, default=1, help="micro-batches per step (1)")
    g.add_argument("--save-every", type=positive_int, default=100, help="checkpoint interval in steps (100)")
    g.add_argument("--keep", type=positive_int, default=3, help="checkpoints to keep (3)")
    g.add_argument("--log-every", type=positive_int, default=10)
    g.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in the run dir")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", default="auto")
    g.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto")
    g.add_argument("--workers", type=int, default=0, help="data loader worker processes (0)")
    g.add_argument("--json", action="store_true")
    g.add_argument("--quiet", "-q", action="store_true")


def outputs(args: argparse.Namespace) -> tuple[Path, Path]:
    """(model file, run folder) from --out and --run-dir; fails early if they cannot be written."""
    out: Path = args.out
    if out.suffix == ".safetensors":
        model, run_dir = out, args.run_dir or out.with_name(out.stem + "_run")
    else:
        model, run_dir = out / "model.safetensors", args.run_dir or out
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{out}: directory {parent} does not exist")
    if out.exists() and out.suffix != ".safetensors" and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder (give a run folder or a .safetensors file)")
    return model, run_dir


def loop_config(args: argparse.Namespace) -> Any:
    from impasto.train.loop import TrainConfig

    args.model_path, run_dir = outputs(args)
    return TrainConfig(run_dir=run_dir, steps=args.steps, batch=args.batch, grad_accum=args.grad_accum,
                       seed=args.seed, device=args.device, precision=args.precision, save_every=args.save_every,
                       keep=args.keep, log_every=args.log_every, resume=args.resume, num_workers=args.workers)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model (fast-style, adain, cyclegan, dcgan, vae)")
    tsub = p.add_subparsers(dest="trainer", metavar="TRAINER")
    tsub.required = True

    f = tsub.add_parser("fast-style", help="Johnson-style feed-forward network for one or more styles")
    f.add_argument("--style", "-s", action="append", type=Path, required=True, help="style image (repeatable)")
    f.add_argument("--content-dir", type=Path, required=True, help="folder of training photos")
    f.add_argument("--val-dir", type=Path, default=None, help="held-out photos for validation loss")
    f.add_argument("--style-size", type=positive_int, default=512)
    f.add_argument("--content-weight", type=nonneg_float, default=1.0)
    f.add_argument("--style-weight", type=nonneg_float, default=5.0)
    f.add_argument("--tv-weight", type=nonneg_float, default=10.0)
    f.add_argument("--lr", type=nonneg_float, default=1e-3)
    f.add_argument("--width", type=positive_int, default=32, help="base channels (32 = Johnson; 16 = 4x faster)")
    f.add_argument("--backbone", choices=["vgg16", "vgg19"], default="vgg16")
    add_loop_options(f, steps=2000, batch=4, size=256)
    f.set_defaults(func=run_fast_style)

    a = tsub.add_parser("adain", help="AdaIN decoder for arbitrary styles (optionally adversarial)")
    a.add_argument("--content-dir", type=Path, required=True)
    a.add_argument("--style-dir", type=Path, required=True)
    a.add_argument("--val-dir", type=Path, default=None, help="held-out photos (paired with --style-dir images)")
    a.add_argument("--style-weight", type=nonneg_float, default=10.0)
    a.add_argument("--content-weight", type=nonneg_float, default=1.0)
    a.add_argument("--adv-weight", type=nonneg_float, default=0.0, help="0 disables the discriminator")
    a.add_argument("--lr", type=nonneg_float, default=1e-4)
    a.add_argument("--slim", type=positive_int, default=1, help="divide decoder channels (1 = paper)")
    a.add_argument("--backbone", choices=["vgg16", "vgg19"], default="vgg16")
    add_loop_options(a, steps=2000, batch=8, size=256)
    a.set_defaults(func=run_adain)

    from impasto.cli import train_gan

    train_gan.register_cyclegan(tsub)
    train_gan.register_generative(tsub)


def _val_images(folder: Path | None, size: int) -> list[Any]:
    if folder is None:
        return []
    from impasto.io import load_image, resize_long
    from impasto.train.data import scan_images

    paths, _ = scan_images(folder, name="--val-dir")
    return [resize_long(load_image(p), size) for p in paths[:16]]


def run_recipe(recipe: Any, data: Any, cfg: Any, args: argparse.Namespace, desc: str, **extra: Any) -> int:
    """Train ``recipe`` on the shared loop with a progress bar; report like every trainer."""
    from impasto.train.loop import train

    bar = ProgressBar(args.quiet, desc=desc)
    try:
        result = train(recipe, data, cfg, out=args.model_path, callback=bar)
    finally:
        bar.close()
    return finish(result, args, {"model": str(args.model_path), "run_dir": str(cfg.run_dir), **extra,
                                 **recipe.summary()})


def finish(result: Any, args: argparse.Namespace, extra: dict[str, Any]) -> int:
    if args.json:
        print_json({**extra, **result.as_dict()})
    elif not args.quiet:
        print(f"trained {result.steps} steps in {result.seconds:.0f}s; wrote {args.model_path}", file=sys.stderr)
    return 0


def run_fast_style(args: argparse.Namespace) -> int:
    from impasto.io import load_image
    from impasto.train.data import ImageFolder
    from impasto.train.fast_style import FastStyleOptions, FastStyleRecipe

    for s in args.style:
        load_image(s)  # fail fast on a bad style file
    cfg = loop_config(args)
    data = ImageFolder(args.content_dir, args.size, seed=args.seed, name="--content-dir")
    opts = FastStyleOptions(styles=list(args.style), size=args.size, style_size=args.style_size,
                            content_weight=args.content_weight, style_weight=args.style_weight,
                            tv_weight=args.tv_weight, lr=args.lr, width=args.width, backbone=args.backbone,
                            val_images=_val_images(args.val_dir, args.size))
    return run_recipe(FastStyleRecipe(opts), data, cfg, args, "fast-style", skipped_files=data.skipped)


def run_adain(args: argparse.Namespace) -> int:
    from impasto.train.adain import AdainOptions, AdainRecipe, ContentStylePairs, val_pairs
    from impasto.train.data import ImageFolder, scan_images
    cfg = loop_config(args)
    content = ImageFolder(args.content_dir, args.size, seed=args.seed, name="--content-dir")
    style = ImageFolder(args.style_dir, args.size, seed=args.seed + 7, name="--style-dir")
    data = ContentStylePairs(content, style, seed=args.seed)
    from impasto.io import load_image

    vals = _val_images(args.val_dir, args.size)
    style_imgs = [load_image(p) for p in scan_images(args.style_dir, name="--style-dir")[0][:8]]
    opts = AdainOptions(style_weight=args.style_weight, content_weight=args.content_weight,
                        adv_weight=args.adv_weight, lr=args.lr, slim=args.slim, backbone=args.backbone,
                        val_pairs=val_pairs(vals, style_imgs, args.size) if vals else [])
    return run_recipe(AdainRecipe(opts), data, cfg, args, "adain", skipped_files=content.skipped + style.skipped)
