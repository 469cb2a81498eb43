"""Draw images from a trained DCGAN or VAE; VAE latent interpolation between two images."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from impasto.errors import InputError
from impasto.io import require_finite
from impasto.models import files

KINDS = ("dcgan", "vae")


@dataclass(frozen=True)
class Loaded:
    """A generative model read once: the CLI checks its size and then samples from the same network."""

    kind: str
    net: torch.nn.Module
    meta: dict[str, Any]


def load(model: str | Path | Loaded) -> Loaded:
    """The network and metadata of a model file or run folder of either kind (a ``Loaded`` passes through)."""
    if isinstance(model, Loaded):
        return model
    path = files.model_file(model)
    kind, _ = files.read_meta(path)
    if kind == "dcgan":
        from impasto.models.dcgan import load_generator

        net, meta = load_generator(path)
    elif kind == "vae":
        from impasto.models.vae import load_vae

        net, meta = load_vae(path)  # type: ignore[assignment]
    else:
        raise InputError(f"{path}: is a {files.short(kind, 40)} model; generate needs a DCGAN or VAE "
                         "(impasto train dcgan|vae)")
    return Loaded(kind, net, meta)


def sample(model: str | Path | Loaded, n: int, *, seed: int = 0) -> tuple[torch.Tensor, dict[str, Any]]:
    """``n`` images (n,3,S,S) in [0,1]; the same seed gives the same images."""
    loaded = load(model)
    kind, net, meta = loaded.kind, loaded.net, loaded.meta
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        if kind == "dcgan":
            from impasto.models.dcgan import generate

            images = generate(net, torch.randn(n, int(meta["nz"]), generator=gen))  # type: ignore[arg-type]
        else:
            z = torch.randn(n, int(meta["zdim"]), generator=gen)
            images = torch.cat([net.decode(zs) for zs in z.split(64)])  # type: ignore[operator]
    return require_finite(images, f"the {kind} model").clamp(0, 1), {"kind": kind, **meta}


def _square(image: torch.Tensor, size: int) -> torch.Tensor:
    from impasto.io import resize

    h, w = image.shape[-2:]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return resize(image[..., top:top + s, left:left + s], (size, size))


def interpolate(model: str | Path | Loaded, a: torch.Tensor, b: torch.Tensor, steps: int = 8) -> torch.Tensor:
    """Decode ``steps`` points on the line between the latent means of images ``a`` and ``b``."""
    loaded = load(model)
    kind, net, meta = loaded.kind, loaded.net, loaded.meta
    if kind != "vae":
        raise InputError("--interpolate needs a VAE model (a DCGAN has no encoder)")
    if steps < 2:
        raise InputError("--steps must be at least 2 for an interpolation")
    size = int(meta["size"])
    with torch.no_grad():
        mu, _ = net.encode(torch.cat([_square(a, size), _square(b, size)]))  # type: ignore[operator]
        t = torch.linspace(0, 1, steps)[:, None]
        images = net.decode((1 - t) * mu[0] + t * mu[1])  # type: ignore[operator]
    return require_finite(images, "the VAE").clamp(0, 1)
