"""The 70x70 PatchGAN discriminator shared by the adversarial trainers (AdaIN, CycleGAN, fine-tuning).

It scores overlapping patches rather than the whole image, so it judges texture and local style, has
few parameters, and works at any input size (Isola et al. 2017).
"""

from __future__ import annotations

import torch
from torch import nn


class PatchDiscriminator(nn.Module):
    """70x70 PatchGAN (Isola et al.): a map of real/fake scores, one per overlapping patch."""

    def __init__(self, base: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, base, 4, 2, 1), nn.LeakyReLU(0.2)]
        ch = base
        for i in range(1, n_layers + 1):
            nxt = base * min(2**i, 8)
            stride = 2 if i < n_layers else 1
            layers += [nn.Conv2d(ch, nxt, 4, stride, 1), nn.InstanceNorm2d(nxt, affine=True), nn.LeakyReLU(0.2)]
            ch = nxt
        layers.append(nn.Conv2d(ch, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image * 2 - 1)
