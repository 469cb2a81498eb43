"""``impasto train fast-style|...``: every trainer shares the loop options (steps, batch, resume...)."""

from __future__ import annotations

import argparse
from pathlib import Path

from impasto.cli.common import nonneg_float, path_arg, positive_int
from impasto.cli.train_common import add_loop_options, loop_config, run_recipe, val_images
from impasto.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model (fast-style, adain, cyclegan, dcgan, vae)")
    tsub = p.add_subparsers(dest="trainer", metavar="TRAINER")
    tsub.required = True

    f = tsub.add_parser("fast-style", help="Johnson-style feed-forward network for one or more styles")
    f.add_argument("--style", "-s", action="append", type=path_arg, required=True, help="style image (repeatable)")
    f.add_argument("--content-dir", type=path_arg, required=True, help="folder of training photos")
    f.add_argument("--val-dir", type=path_arg, default=None, help="held-out photos for validation loss")
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
    a.add_argument("--content-dir", type=path_arg, required=True)
    a.add_argument("--style-dir", type=path_arg, required=True)
    a.add_argument("--val-dir", type=path_arg, default=None, help="held-out photos (paired with --style-dir images)")
    a.add_argument("--style-weight", type=nonneg_float, default=10.0)
    a.add_argument("--content-weight", type=nonneg_float, default=1.0)
    a.add_argument("--adv-weight", type=nonneg_float, default=0.0, help="0 disables the discriminator")
    a.add_argument("--gram-weight", type=nonneg_float, default=0.0,
                   help="also match the painting's Gram matrices at relu1_1..relu5_1 (0 = off, the paper's loss)")
    a.add_argument("--lr", type=nonneg_float, default=1e-4)
    a.add_argument("--slim", type=positive_int, default=1, help="divide decoder channels (1 = paper)")
    a.add_argument("--arch", choices=["plain", "skip"], default="plain",
                   help="plain: the paper's decoder from relu4_1; skip: also AdaIN'd relu3_1/relu2_1 skips")
    a.add_argument("--skips", default="relu3_1,relu2_1", help="skip levels of --arch skip (relu3_1,relu2_1)")
    a.add_argument("--skip-scale", type=float, default=0.05, help="skip features are multiplied by this (0.05)")
    a.add_argument("--wct-levels", default="",
                   help="levels given the painting's full covariance (whitening-colouring) instead of AdaIN's "
                        "mean/std, e.g. relu2_1 (default: none); written to the model file")
    a.add_argument("--strength-range", default="1,1", help="LO,HI: strengths drawn per training sample (1,1)")
    a.add_argument("--split-file", type=path_arg, default=None,
                   help="TSV (file, folder, split): train on its 'train' rows, validate on its 'val' rows")
    a.add_argument("--best-out", type=path_arg, default=None,
                   help="also write the decoder here whenever its validation loss is the best so far")
    a.add_argument("--backbone", choices=["vgg16", "vgg19"], default="vgg16")
    a.add_argument("--init", type=path_arg, default=None,
                   help="fine-tune this AdaIN decoder (.safetensors) instead of starting from random weights; "
                        "its architecture must match --arch/--slim/--skips/--skip-scale")
    add_loop_options(a, steps=2000, batch=8, size=256)
    a.set_defaults(func=run_adain)

    from impasto.cli.train_gan import register_cyclegan, register_generative

    register_cyclegan(tsub)
    register_generative(tsub)


def run_fast_style(args: argparse.Namespace) -> int:
    from impasto.io import load_image
    from impasto.train.data import ImageFolder
    from impasto.train.fast_style import FastStyleOptions, FastStyleRecipe, StyledPhotos

    for s in args.style:
        load_image(s)  # fail fast on a bad style file
    cfg = loop_config(args)
    photos = ImageFolder(args.content_dir, args.size, seed=args.seed, name="--content-dir")
    data = StyledPhotos(photos, len(args.style), seed=args.seed)
    opts = FastStyleOptions(styles=list(args.style), size=args.size, style_size=args.style_size,
                            content_weight=args.content_weight, style_weight=args.style_weight,
                            tv_weight=args.tv_weight, lr=args.lr, width=args.width, backbone=args.backbone,
                            val_images=val_images(args.val_dir, args.size))
    return run_recipe(FastStyleRecipe(opts), data, cfg, args, "fast-style", skipped_files=photos.skipped)


def _pair(text: str, flag: str) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in text.split(","))
    except ValueError as exc:
        raise InputError(f"{flag} {text!r}: expected LO,HI") from exc
    if not 0 <= lo <= hi <= 1:
        raise InputError(f"{flag} {text!r}: need 0 <= LO <= HI <= 1")
    return lo, hi


def _adain_files(args: argparse.Namespace) -> tuple[list[Path], list[Path], list[Path], list[Path]]:
    """(train photos, train paintings, val photos, val paintings): by --split-file when given, chosen by
    name before any file is opened, so files of other splits are never read."""
    from impasto.train.data import scan_images, selection

    val_photos = scan_images(args.val_dir, name="--val-dir")[0] if args.val_dir else []
    if args.split_file is None:
        photos, _ = scan_images(args.content_dir, name="--content-dir")
        paintings, _ = scan_images(args.style_dir, name="--style-dir")
        return photos, paintings, val_photos, paintings[:8]
    rows = selection(args.split_file).keep  # one split's rows, by name (train/data.py)
    photos, _ = scan_images(args.content_dir, name="--content-dir ('train' rows)", keep=rows("train"))
    paintings, _ = scan_images(args.style_dir, name="--style-dir ('train' rows)", keep=rows("train"))
    if not val_photos:
        val_photos = scan_images(args.content_dir, name="--content-dir ('val' rows)", keep=rows("val"))[0][:16]
    val_paintings = scan_images(args.style_dir, name="--style-dir ('val' rows)", keep=rows("val"))[0][:16]
    return photos, paintings, val_photos, val_paintings


def run_adain(args: argparse.Namespace) -> int:
    from impasto.io import load_image, resize_long
    from impasto.train.adain import AdainOptions, AdainRecipe, ContentStylePairs, val_pairs
    from impasto.train.data import ImageFolder

    cfg = loop_config(args)
    photos, paintings, val_photos, val_paintings = _adain_files(args)
    content = ImageFolder(photos, args.size, seed=args.seed)
    style = ImageFolder(paintings, args.size, seed=args.seed + 7)
    data = ContentStylePairs(content, style, seed=args.seed)
    vals = [resize_long(load_image(p), args.size) for p in val_photos[:16]]
    style_imgs = [load_image(p) for p in val_paintings]
    skips = tuple(n for n in args.skips.split(",") if n)
    opts = AdainOptions(style_weight=args.style_weight, content_weight=args.content_weight,
                        adv_weight=args.adv_weight, gram_weight=args.gram_weight, lr=args.lr, slim=args.slim,
                        arch=args.arch, skips=skips, skip_scale=args.skip_scale,
                        wct_levels=tuple(n for n in args.wct_levels.split(",") if n),
                        strength_range=_pair(args.strength_range, "--strength-range"), best_path=args.best_out,
                        data=f"{len(photos)} photos from {args.content_dir}, {len(paintings)} paintings from "
                             f"{args.style_dir}" + (f" ('train' rows of {args.split_file.name})"
                                                    if args.split_file else ""),
                        backbone=args.backbone, init=args.init,
                        val_pairs=val_pairs(vals, style_imgs, args.size) if vals else [])
    return run_recipe(AdainRecipe(opts), data, cfg, args, "adain", skipped_files=content.skipped + style.skipped)
