"""Convolutional VAE (Kingma & Welling 2014) for 32, 64 or 128 px images.

The encoder is a list of stride-2 ``blocks`` (freezable for transfer: ``freeze_encoder(k)``), ending in
mean and log-variance of a diagonal Gaussian; the decoder mirrors it with nearest upsampling and
convolutions, sigmoid output. Samples use the reparameterisation z = mu + sigma * eps.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from impasto.models import files, freeze_first

KIND = "vae"

SIZES = (32, 64, 128)


class ConvVAE(nn.Module):
    def __init__(self, size: int = 64, zdim: int = 128, base: int = 32) -> None:
        super().__init__()
        if size not in SIZES:
            raise ValueError(f"VAE image size must be one of {SIZES}, got {size}")
        self.size, self.zdim, self.base = size, zdim, base
        n = int(math.log2(size)) - 2  # stride-2 stages down to 4x4
        chans = [base * min(2**i, 8) for i in range(n)]
        blocks, cin = [], 3
        for c in chans:
            blocks.append(nn.Sequential(nn.Conv2d(cin, c, 4, 2, 1), nn.BatchNorm2d(c), nn.LeakyReLU(0.2, True)))
            cin = c
        self.blocks = nn.ModuleList(blocks)
        self.to_stats = nn.Linear(cin * 16, 2 * zdim)
        self.from_z = nn.Linear(zdim, cin * 16)
        up: list[nn.Module] = []
        for c in reversed([3, *chans[:-1]]):
            last = c == 3 and len(up) == 4 * (n - 1)
            up += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, c, 3, padding=1)]
            if not last:
                up += [nn.BatchNorm2d(c), nn.LeakyReLU(0.2, True)]
            cin = c
        self.decoder = nn.Sequential(*up)
        self._top = chans[-1]

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images in [0,1] -> (mu, logvar), each (N, zdim)."""
        y = x * 2 - 1
        for block in self.blocks:
            y = block(y)
        mu, logvar = self.to_stats(y.flatten(1)).float().chunk(2, dim=1)
        return mu, logvar.clamp(-30, 20)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        y = self.from_z(z).view(z.shape[0], self._top, 4, 4)
        return torch.sigmoid(self.decoder(y))

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reconstruction, mu, logvar); sampling noise from ``generator`` when given (exact resume)."""
        mu, logvar = self.encode(x)
        eps = torch.randn(mu.shape, generator=generator, device="cpu").to(mu.device) if generator else \
            torch.randn_like(mu)
        z = mu + eps * (0.5 * logvar).exp()
        return self.decode(z.to(self.from_z.weight.dtype)), mu, logvar

    def freeze_encoder(self, k: int) -> list[str]:
        """Freeze the first ``k`` encoder blocks."""
        return freeze_first(self.blocks, k, len(self.blocks), "--freeze-encoder")


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) per image, summed over latent dimensions, averaged over the batch."""
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)).mean()


def reconstruction_error(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Squared error summed over pixels, averaged over the batch (the Gaussian log-likelihood up to
    scale), so it balances against the KL sum."""
    return F.mse_loss(x_hat.float(), x.float(), reduction="none").flatten(1).sum(1).mean()


def load_vae(path: str | Path) -> tuple[ConvVAE, dict[str, Any]]:
    states, meta = files.load_grouped(path, KIND)
    size = files.meta_choice(meta, "size", tuple(SIZES), where=path)
    zdim = files.meta_int(meta, "zdim", 1, 4096, where=path)
    base = files.meta_int(meta, "base", 1, 1024, where=path)
    vae = files.build_checked(path, lambda: ConvVAE(size, zdim, base), states.get("vae", {}), "VAE")
    return vae.eval(), meta
