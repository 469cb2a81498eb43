"""Apply a trained CycleGAN generator to an image of any size (tiled above ``tile`` pixels a side)."""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from impasto.device import autocast, memory_format, pick_device, pick_dtype, precision_name
from impasto.errors import ImpastoError, InputError
from impasto.io import pad_to_min, require_finite
from impasto.models.files import model_file, short
from impasto.tiling import forward_tiled

DIRECTIONS = ("a2b", "b2a")
#: the smallest side the generator runs at: its two stride-2 stages and instance norms need more than one
#: position at the bottom; a smaller or thinner photo (or tile) is padded up to it and cropped back
MIN_SIDE = 16


@functools.lru_cache(maxsize=2)
def _cached(path: str, mtime: float) -> tuple[dict[str, Any], dict[str, Any]]:
    from impasto.models.cyclegan import load_generators

    return load_generators(path)


def bundled_cyclegans() -> list[str]:
    """Names of the CycleGANs shipped in the package (``impasto translate --model NAME``)."""
    from impasto import bundled
    from impasto.models.cyclegan import KIND
    from impasto.models.files import read_meta

    names = []
    for name, path in bundled.models().items():
        try:
            if read_meta(path)[0] == KIND:
                names.append(name)
        except ImpastoError:  # a damaged bundled file is not offered; loading it says why
            continue
    return names


def resolve_model(model: str | Path) -> Path:
    """A model file, a run folder, or the bare name of a bundled model (``--model monet``): a name that is
    neither a path nor a bundled model fails here in one line, before any image is read."""
    p = Path(model)
    found = model_file(p)  # a bundled model's name included
    if p.is_dir() and not found.exists() and p.name in bundled_cyclegans():
        raise InputError(f"--model {short(p.name, 60)}: the folder {p}/ here (no model.safetensors in it) hides the "
                         f"bundled CycleGAN of that name; run from another folder or rename this one")
    if found.exists() or p.suffix or len(p.parts) != 1:
        return found
    raise InputError(f"--model {short(p.name, 60)}: no such file, run folder or bundled CycleGAN (bundled: "
                     f"{', '.join(bundled_cyclegans()) or 'none yet'}); train one with 'impasto train cyclegan'")


#: the generator's downsampling factor: its output carries a pattern with this period, locked to the grid
GRID = 4


def _shift_average(net: Any, x: torch.Tensor, shifts: int) -> torch.Tensor:
    """The mean of the translations of ``x`` shifted by 0..shifts-1 px down and right, each shifted back.
    A short-trained generator paints a mosaic locked to its 4 px grid; the content moves with the
    image and the grid does not, so averaging over the grid's phases keeps one and cancels the other."""
    total = None
    for dy in range(shifts):
        for dx in range(shifts):
            y = net(F.pad(x, (dx, 0, dy, 0), mode="reflect"))[..., dy:, dx:].float()
            total = y if total is None else total + y
    assert total is not None
    return total / shifts**2


def translate(image: torch.Tensor, model: str | Path, *, direction: str = "a2b", tile: int = 1024,
              device: str = "auto", precision: str = "auto", shifts: int = GRID) -> tuple[torch.Tensor, dict[str, Any]]:
    """(1,3,H,W) in [0,1] -> the other collection's look, same size; and a record of the run.
    ``shifts`` > 1 averages shifts² passes over the generator's grid phases (``_shift_average``)."""
    if direction not in DIRECTIONS:
        raise InputError(f"--direction must be a2b or b2a, got {direction!r}")
    if not 1 <= shifts <= GRID:
        raise InputError(f"--shifts must be from 1 to {GRID}, got {shifts}")
    path = resolve_model(model)
    if not path.is_file():
        raise InputError(f"{model}: no such model file or run folder with model.safetensors")
    nets, meta = _cached(str(path), path.stat().st_mtime)
    t0 = time.perf_counter()
    dev = pick_device(device)
    dtype = pick_dtype(dev, precision)
    fmt = memory_format(dev, dtype)
    net = nets[direction].to(dev, memory_format=fmt)

    def run(x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        with torch.inference_mode(), autocast(dev, dtype):
            x = pad_to_min(x, MIN_SIDE).to(dev).contiguous(memory_format=fmt)
            return _shift_average(net, x, shifts).cpu()[..., :h, :w]

    y = forward_tiled(run, image, tile=tile, overlap=min(128, tile // 4))
    y = require_finite(y, f"the CycleGAN {path.name}").clamp(0, 1).contiguous()
    names = meta.get("names", ["A", "B"])
    info = {"method": "cyclegan", "model": str(path), "direction": direction,
            "from": names[0] if direction == "a2b" else names[1], "to": names[1] if direction == "a2b" else names[0],
            "shifts": shifts, "seconds": time.perf_counter() - t0, "device": str(dev),
            "precision": precision_name(dtype),
            "size": list(y.shape[-2:])}
    return y, info
