"""``impasto train cyclegan|dcgan|vae``: the trainers that learn from collections (no style image)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from impasto.cli.common import fraction, nonneg_float, path_arg, positive_int


def _split_folder(folder: Path, sel: Any, args: argparse.Namespace, name: str, *, seed: int, max_val: int = 8
                  ) -> tuple[Any, list[Any]]:
    """(augmented training set, up to ``max_val`` centre-cropped validation images) from one folder, within
    ``sel``: the split file's 'train' and 'val' rows when there is one, else a seeded --val-fraction split."""
    from dataclasses import replace

    from impasto.train.data import ImageFolder, select_images, split

    if sel.table is not None:
        train_paths, skipped = select_images(folder, sel, "train", name=name, seed=seed)
        val_paths = select_images(folder, replace(sel, limit=None), "val", name=name, required=False)[0]
    else:
        paths, skipped = select_images(folder, sel, name=name, seed=seed)
        train_paths, val_paths = split(paths, args.val_fraction, seed)
    train = ImageFolder(train_paths, args.size, seed=seed, name=name)
    train.skipped = skipped
    what = sel.describe("train" if sel.table is not None else None)
    train.described = f"{len(train_paths)} files of {folder}" + (f" ({what})" if what else "")
    val_set = ImageFolder(val_paths, args.size, seed=seed, augment=False)
    return train, [val_set[i][None] for i in range(min(max_val, len(val_set)))]


def _add_split_file(p: argparse.ArgumentParser) -> None:
    p.add_argument("--split-file", type=path_arg, default=None,
                   help="TSV (file, folder, split; e.g. ../shared/corpus/split.tsv): train on its 'train' rows, "
                        "validate on its 'val' rows (instead of --val-fraction)")


def _add_name_filters(p: argparse.ArgumentParser, flag: str, what: str) -> None:
    """--[a-|b-]prefix and --[a-|b-]glob: one domain of a mixed folder, chosen by file name."""
    p.add_argument(f"--{flag}prefix", default=None,
                   help=f"read only {what} files whose names start with one of these (comma list, e.g. kmonet_)")
    p.add_argument(f"--{flag}glob", default=None,
                   help=f"read only {what} files whose names match one of these patterns (comma list, "
                        "e.g. 'vg2p_*'); with a prefix, both must match")


def steps_for(args: argparse.Namespace, n_samples: int) -> int:
    """--epochs N overrides --steps: N passes over the training set at the global batch size."""
    per_epoch = max(1, n_samples // args.batch)
    if getattr(args, "epochs", None):
        args.steps = args.epochs * per_epoch
    return per_epoch


def _add_diff_augment(p: argparse.ArgumentParser) -> None:
    p.add_argument("--diff-augment", default="", metavar="OPS",
                   help="differentiable augmentation of the discriminators' real and generated inputs, a comma "
                        "list of color, translation, cutout (for small folders; default: none)")


def _add_ema(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--ema", type=nonneg_float, default=0.0,
                   help=f"keep an exponential moving average of {what} with this decay (e.g. 0.99; ramped up "
                        "as (1+t)/(10+t) over the first steps) and sample and export it (0 = off)")


def register_cyclegan(tsub: argparse._SubParsersAction) -> None:
    from impasto.cli.train_common import add_loop_options

    c = tsub.add_parser("cyclegan", help="CycleGAN between two unpaired image folders (A <-> B)")
    c.add_argument("--a-dir", type=path_arg, required=True, help="collection A (e.g. photos)")
    c.add_argument("--b-dir", type=path_arg, required=True, help="collection B (e.g. paintings)")
    c.add_argument("--val-fraction", type=fraction, default=0.1, help="held out of each folder (0.1)")
    _add_split_file(c)
    _add_name_filters(c, "a-", "--a-dir")
    _add_name_filters(c, "b-", "--b-dir")
    c.add_argument("--epochs", type=positive_int, default=None, help="passes over the larger folder "
                   "(overrides --steps)")
    c.add_argument("--ngf", type=positive_int, default=64, help="generator base channels (64 = paper)")
    c.add_argument("--blocks", type=positive_int, default=9, help="generator residual blocks (9 = paper)")
    c.add_argument("--upsample", choices=("nearest", "bilinear"), default="nearest",  # models.cyclegan checks
                   help="resize before each generator upsampling convolution (nearest; bilinear scored worse on "
                   "the Monet benchmark, README)")
    c.add_argument("--cycle-weight", type=nonneg_float, default=10.0)
    c.add_argument("--identity-weight", type=nonneg_float, default=0.5, help="times --cycle-weight (0.5)")
    c.add_argument("--perceptual-weight", type=nonneg_float, default=0.0, help="VGG cycle term (0 = off)")
    c.add_argument("--lr", type=nonneg_float, default=2e-4)
    c.add_argument("--pool", type=int, default=50, help="image history size for the discriminators (50)")
    c.add_argument("--decay-from", type=fraction, default=0.5, help="linear LR decay over the last part (0.5)")
    c.add_argument("--names", default="A,B", help="names of the two collections, for the record (A,B)")
    _add_diff_augment(c)
    _add_ema(c, "both generators")
    add_loop_options(c, steps=2000, batch=1, size=256)
    c.set_defaults(func=run_cyclegan)


def run_cyclegan(args: argparse.Namespace) -> int:
    from impasto.cli.train_common import loop_config, run_recipe
    from impasto.train.cyclegan import CycleGANRecipe, CycleOptions, Unpaired
    from impasto.train.data import selection

    a_train, a_val = _split_folder(args.a_dir, selection(args.split_file, args.a_prefix, args.a_glob), args,
                                   "--a-dir", seed=args.seed)
    b_train, b_val = _split_folder(args.b_dir, selection(args.split_file, args.b_prefix, args.b_glob), args,
                                   "--b-dir", seed=args.seed + 1)
    data = Unpaired(a_train, b_train, seed=args.seed)
    per_epoch = steps_for(args, len(data))
    cfg = loop_config(args)
    cfg.sample_every = per_epoch  # a sample grid per epoch, besides those at each checkpoint
    names = tuple(n.strip() for n in args.names.split(","))
    opts = CycleOptions(ngf=args.ngf, n_blocks=args.blocks, upsample=args.upsample, cycle_weight=args.cycle_weight,
                        identity_weight=args.identity_weight, perceptual_weight=args.perceptual_weight, lr=args.lr,
                        pool=args.pool, decay_from=args.decay_from, steps=args.steps, size=args.size,
                        augment=args.diff_augment, ema=args.ema,
                        val_a=a_val, val_b=b_val, names=names if len(names) == 2 else ("A", "B"),
                        data=f"A: {a_train.described}; B: {b_train.described}")
    return run_recipe(CycleGANRecipe(opts), data, cfg, args, "cyclegan", steps_per_epoch=per_epoch,
                      epochs=math.ceil(args.steps / per_epoch), skipped_files=a_train.skipped + b_train.skipped,
                      trained_on=opts.data)


def _add_generative_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=path_arg, required=True, help="folder of training images (any formats)")
    p.add_argument("--val-fraction", type=fraction, default=0.1, help="held out for validation (0.1)")
    _add_split_file(p)
    _add_name_filters(p, "", "--data-dir")
    p.add_argument("--max-images", type=positive_int, default=None,
                   help="train on at most this many of the selected files (a seeded random subset)")
    p.add_argument("--epochs", type=positive_int, default=None, help="passes over the training split "
                   "(overrides --steps)")
    p.add_argument("--finetune-from", default=None,
                   help="start from a pretrained model of the same kind (file, run folder or checkpoint .pt)")


def register_generative(tsub: argparse._SubParsersAction) -> None:
    from impasto.cli.train_common import add_loop_options

    d = tsub.add_parser("dcgan", help="DCGAN on an image folder (train, or fine-tune with --freeze-d)")
    _add_generative_options(d)
    d.add_argument("--freeze-d", type=int, default=0, help="freeze the first K discriminator blocks (FreezeD)")
    d.add_argument("--nz", type=positive_int, default=100, help="latent size (100)")
    d.add_argument("--ngf", type=positive_int, default=64)
    d.add_argument("--ndf", type=positive_int, default=64)
    d.add_argument("--lr", type=nonneg_float, default=2e-4)
    _add_ema(d, "the generator")
    _add_diff_augment(d)
    add_loop_options(d, steps=2000, batch=64, size=64)
    d.set_defaults(func=run_dcgan)

    v = tsub.add_parser("vae", help="convolutional VAE on an image folder (train, or fine-tune)")
    _add_generative_options(v)
    v.add_argument("--freeze-encoder", type=int, default=0, help="freeze the first K encoder blocks")
    v.add_argument("--zdim", type=positive_int, default=128, help="latent size (128)")
    v.add_argument("--base", type=positive_int, default=32, help="base channels (32)")
    v.add_argument("--beta", type=nonneg_float, default=1.0, help="KL weight after warm-up (1)")
    v.add_argument("--kl-warmup", type=int, default=500, help="steps to ramp the KL weight from 0 (500)")
    v.add_argument("--perceptual-weight", type=nonneg_float, default=0.0, help="VGG relu2_2 term (0 = off)")
    v.add_argument("--val-kid", action="store_true",
                   help="validate samples with KID/FD against the held-out images too (as the DCGAN does)")
    v.add_argument("--lr", type=nonneg_float, default=1e-3)
    add_loop_options(v, steps=2000, batch=64, size=64)
    v.set_defaults(func=run_vae)


def _generative_data(args: argparse.Namespace) -> tuple[Any, list[Any], int]:
    from impasto.errors import InputError

    if args.size not in (32, 64, 128):
        raise InputError(f"--size must be 32, 64 or 128 for {args.trainer}, got {args.size}")
    from impasto.train.data import selection

    sel = selection(args.split_file, args.prefix, args.glob, args.max_images)
    train, val = _split_folder(args.data_dir, sel, args, "--data-dir", seed=args.seed, max_val=256)
    return train, val, steps_for(args, len(train))


def _run_generative(args: argparse.Namespace, recipe: Any, train_set: Any, per_epoch: int, cfg: Any) -> int:
    from impasto.cli.train_common import run_recipe

    cfg.sample_every = per_epoch  # a sample grid per epoch
    return run_recipe(recipe, train_set, cfg, args, args.trainer, steps_per_epoch=per_epoch,
                      finetuned_from=args.finetune_from, skipped_files=train_set.skipped,
                      trained_on=train_set.described)


def run_dcgan(args: argparse.Namespace) -> int:
    from impasto.cli.train_common import loop_config
    from impasto.train.dcgan import DCGANOptions, DCGANRecipe

    train_set, val, per_epoch = _generative_data(args)
    cfg = loop_config(args)
    opts = DCGANOptions(size=args.size, nz=args.nz, ngf=args.ngf, ndf=args.ndf, lr=args.lr,
                        finetune_from=args.finetune_from, freeze_d=args.freeze_d, ema=args.ema,
                        augment=args.diff_augment, val_images=val, data=train_set.described)
    return _run_generative(args, DCGANRecipe(opts), train_set, per_epoch, cfg)


def run_vae(args: argparse.Namespace) -> int:
    from impasto.cli.train_common import loop_config
    from impasto.train.vae import VAEOptions, VAERecipe

    train_set, val, per_epoch = _generative_data(args)
    cfg = loop_config(args)
    opts = VAEOptions(size=args.size, zdim=args.zdim, base=args.base, lr=args.lr, beta=args.beta,
                      kl_warmup=args.kl_warmup, perceptual_weight=args.perceptual_weight,
                      finetune_from=args.finetune_from, freeze_encoder=args.freeze_encoder, val_images=val,
                      val_kid=args.val_kid,
                      data=train_set.described)
    return _run_generative(args, VAERecipe(opts), train_set, per_epoch, cfg)
