"""The training loop's options and reporting, shared by every ``impasto train`` subcommand."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from impasto.cli.common import ProgressBar, path_arg, positive_int, print_json
from impasto.errors import InputError


def add_loop_options(p: argparse.ArgumentParser, *, steps: int, batch: int, size: int) -> None:
    g = p.add_argument_group("training loop (shared by every trainer)")
    g.add_argument("--out", type=path_arg, required=True,
                   help="final model: FILE.safetensors, or a run folder RUN (model in RUN/model.safetensors)")
    g.add_argument("--run-dir", type=path_arg, default=None, help="checkpoints, log.jsonl, loss.png and samples "
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


def val_images(folder: Path | None, size: int) -> list[Any]:
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
