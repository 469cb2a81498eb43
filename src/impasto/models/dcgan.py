"""DCGAN (Radford et al. 2016) for 32, 64 or 128 px images.

Generator: z -> 4x4 by a transposed convolution, then stride-2 transposed convolutions with batch
norm and ReLU, tanh output. Discriminator: the mirror, strided convolutions with batch norm and
LeakyReLU. The discriminator is a list of ``blocks`` so fine-tuning can freeze the first K of them
(FreezeD, Mo et al. 2020): early layers hold generic image features worth keeping.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from impasto.models import files, freeze_first

KIND = "dcgan"

SIZES = (32, 64, 128)


def _check_size(size: int) -> int:
    if size not in SIZES:
        raise ValueError(f"DCGAN image size must be one of {SIZES}, got {size}")
    return int(math.log2(size)) - 2  # number of 2x stages after the 4x4 start


def init_weights(module: nn.Module) -> None:
    """The paper's initialisation: N(0, 0.02) convolutions, N(1, 0.02) norm scales."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class Generator(nn.Module):
    def __init__(self, size: int = 64, nz: int = 100, ngf: int = 64) -> None:
        super().__init__()
        n = _check_size(size)
        self.size, self.nz, self.ngf = size, nz, ngf
        ch = ngf * 2 ** (n - 1)
        layers: list[nn.Module] = [nn.ConvTranspose2d(nz, ch, 4, 1, 0, bias=False), nn.BatchNorm2d(ch), nn.ReLU(True)]
        for _ in range(n - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, 3, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(N, nz) latent codes -> (N, 3, size, size) images in [0, 1]."""
        return (self.net(z.view(z.shape[0], self.nz, 1, 1)) + 1) / 2


class Discriminator(nn.Module):
    def __init__(self, size: int = 64, ndf: int = 64) -> None:
        super().__init__()
        n = _check_size(size)
        self.size, self.ndf = size, ndf
        blocks = [nn.Sequential(nn.Conv2d(3, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True))]
        ch = ndf
        for _ in range(n - 1):
            blocks.append(nn.Sequential(nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch * 2),
                                        nn.LeakyReLU(0.2, True)))
            ch *= 2
        blocks.append(nn.Sequential(nn.Conv2d(ch, 1, 4, 1, 0, bias=False)))
        self.blocks = nn.ModuleList(blocks)
        init_weights(self)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        y = x * 2 - 1
        for block in self.blocks:
            y = block(y)
        return y.flatten(1).mean(1)  # a logit per image

    def forward(self, real: torch.Tensor, fake: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        """Logits for ``real`` (and ``fake``) in separate batches, as batch norm in the paper sees them;
        one call, so DDP sees one forward per backward."""
        return (self.score(real),) if fake is None else (self.score(real), self.score(fake))

    def freeze(self, k: int) -> list[str]:
        """Freeze the first ``k`` blocks (FreezeD; the last, scoring block always trains)."""
        return freeze_first(self.blocks, k, len(self.blocks) - 1, "--freeze-d")


@contextlib.contextmanager
def batch_statistics(module: torch.nn.Module) -> Iterator[None]:
    """Batch norm on the batch's own statistics without touching the running averages (momentum 0):
    how DCGAN samples are drawn (pytorch/examples never switches G to eval), with no side effect."""
    norms = [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    saved = [(m.training, m.momentum) for m in norms]
    for m in norms:
        m.train()
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, (training, momentum) in zip(norms, saved, strict=True):
            m.train(training)
            m.momentum = momentum


@torch.no_grad()
def generate(g: Generator, z: torch.Tensor, batch: int = 64) -> torch.Tensor:
    """Images for latent codes ``z`` in batches of ``batch`` (same codes, same images)."""
    with batch_statistics(g):
        return torch.cat([g(zs) for zs in z.split(batch)]).float().cpu()


def load_generator(path: str | Path) -> tuple[Generator, dict[str, Any]]:
    states, meta = files.load_grouped(path, KIND)
    size = files.meta_choice(meta, "size", tuple(SIZES), where=path)
    nz = files.meta_int(meta, "nz", 1, 4096, where=path)
    ngf = files.meta_int(meta, "ngf", 1, 1024, where=path)
    g = files.build_checked(path, lambda: Generator(size, nz, ngf), states.get("G", {}), "generator")
    return g.eval(), meta
