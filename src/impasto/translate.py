"""Apply a trained CycleGAN generator to an image of any size (tiled above ``tile`` pixels a side)."""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import torch

from impasto.device import autocast, memory_format, pick_device, pick_dtype, precision_name
from impasto.errors import InputError
from impasto.models.files import model_file
from impasto.tiling import forward_tiled

DIRECTIONS = ("a2b", "b2a")


@functools.lru_cache(maxsize=2)
def _cached(path: str, mtime: float) -> tuple[dict[str, Any], dict[str, Any]]:
    from impasto.models.cyclegan import load_generators

    return load_generators(path)


def translate(image: torch.Tensor, model: str | Path, *, direction: str = "a2b", tile: int = 1024,
              device: str = "auto", precision: str = "auto") -> tuple[torch.Tensor, dict[str, Any]]:
    """(1,3,H,W) in [0,1] -> the other collection's look, same size; and a record of the run."""
    if direction not in DIRECTIONS:
        raise InputError(f"--direction must be a2b or b2a, got {direction!r}")
    path = model_file(model)
    if not path.is_file():
        raise InputError(f"{model}: no such model file or run folder with model.safetensors")
    nets, meta = _cached(str(path), path.stat().st_mtime)
    t0 = time.perf_counter()
    dev = pick_device(device)
    dtype = pick_dtype(dev, precision)
    fmt = memory_format(dev, dtype)
    net = nets[direction].to(dev, memory_format=fmt)

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), autocast(dev, dtype):
            return net(x.to(dev).contiguous(memory_format=fmt)).float().cpu()

    y = forward_tiled(run, image, tile=tile, overlap=min(128, tile // 4)).clamp(0, 1).contiguous()
    names = meta.get("names", ["A", "B"])
    info = {"method": "cyclegan", "model": str(path), "direction": direction,
            "from": names[0] if direction == "a2b" else names[1], "to": names[1] if direction == "a2b" else names[0],
            "seconds": time.perf_counter() - t0, "device": str(dev), "precision": precision_name(dtype),
            "size": list(y.shape[-2:])}
    return y, info
