"""Launched by tests under torchrun: trains a tiny fast-style model and dumps this rank's parameters."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from impasto import bundled
from impasto.train.data import ImageFolder
from impasto.train.fast_style import FastStyleOptions, FastStyleRecipe, StyledPhotos
from impasto.train.loop import TrainConfig, train


def main() -> None:
    torch.set_num_threads(1)
    out = Path(sys.argv[1])
    batch, accum, steps = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    photos = list(bundled.photos().values())
    # two styles: which style each sample trains must not depend on the process layout
    styles = [bundled.style("picabia_udnie"), bundled.style("kandinsky_in_grey")]
    data = StyledPhotos(ImageFolder(photos, 32, seed=0), len(styles), seed=0)
    opts = FastStyleOptions(styles=styles, size=32, style_size=64, width=8)
    recipe = FastStyleRecipe(opts)
    setup = recipe.setup

    def setup_and_record(ctx):  # keep the initial weights so the test can measure the update itself
        setup(ctx)
        torch.save(recipe.models["net"].state_dict(), out / "params_init.pt")

    out.mkdir(parents=True, exist_ok=True)
    recipe.setup = setup_and_record  # type: ignore[method-assign]
    cfg = TrainConfig(run_dir=out / "run", steps=steps, batch=batch, grad_accum=accum, precision="fp32",
                      device="cpu", save_every=steps, log_every=1)
    train(recipe, data, cfg, out=out / "model.safetensors")
    rank = int(os.environ.get("RANK", "0"))
    torch.save(recipe.models["net"].state_dict(), out / f"params_rank{rank}.pt")


if __name__ == "__main__":
    main()
