"""``impasto data``: build the offline demonstration data sets (no downloads)."""

from __future__ import annotations

import argparse

from impasto.cli.common import path_arg, positive_int, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="build offline demonstration data sets")
    dsub = p.add_subparsers(dest="dataset", metavar="DATASET")
    dsub.required = True
    c = dsub.add_parser("cyclegan-demo", help="photos (A) vs the same kind of photos as sepia prints (B)")
    c.add_argument("out_dir", type=path_arg)
    c.add_argument("--crops", type=positive_int, default=48, help="crops per folder (48)")
    c.add_argument("--size", type=positive_int, default=160)
    c.set_defaults(func=run_cyclegan_demo)
    f = dsub.add_parser("faces", help="LFW faces: a large pretraining folder and a small sepia target folder")
    f.add_argument("out_dir", type=path_arg)
    f.add_argument("--pretrain", type=positive_int, default=160, help="faces in the pretraining folder (160)")
    f.add_argument("--size", type=positive_int, default=32)
    f.set_defaults(func=run_faces)


def run_cyclegan_demo(args: argparse.Namespace) -> int:
    from impasto.train.demo_data import cyclegan_demo

    print_json({"out_dir": str(args.out_dir), **cyclegan_demo(args.out_dir, crops=args.crops, size=args.size)})
    return 0


def run_faces(args: argparse.Namespace) -> int:
    from impasto.train.demo_data import faces_demo

    print_json({"out_dir": str(args.out_dir), **faces_demo(args.out_dir, pretrain=args.pretrain, size=args.size)})
    return 0
