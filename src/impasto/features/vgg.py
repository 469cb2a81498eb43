"""VGG-16/19 convolutional trunks with torchvision-compatible state-dict keys (``features.N.weight``).

Only the convolutional part is defined: style transfer and perceptual losses never use the classifier.
Layer names follow the papers (``conv4_2``, ``relu4_2``, ``pool4``) and map to torchvision indices.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

Arch = Literal["vgg16", "vgg19"]
Pooling = Literal["max", "avg"]

#: convolutions per block
BLOCKS: dict[str, tuple[int, ...]] = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
WIDTHS = (64, 128, 256, 512, 512)


def layer_names(arch: Arch) -> list[str]:
    """Names of the modules of ``features`` in order, e.g. ['conv1_1', 'relu1_1', ..., 'pool5']."""
    if arch not in BLOCKS:
        raise ValueError(f"unknown VGG architecture {arch!r}")
    names: list[str] = []
    for b, n in enumerate(BLOCKS[arch], start=1):
        for i in range(1, n + 1):
            names += [f"conv{b}_{i}", f"relu{b}_{i}"]
        names.append(f"pool{b}")
    return names


def conv_names(arch: Arch) -> list[str]:
    return [n for n in layer_names(arch) if n.startswith("conv")]


class VGG(nn.Module):
    """The ``features`` trunk of torchvision's VGG (no batch norm), with max or average pooling."""

    def __init__(self, arch: Arch = "vgg16", pooling: Pooling = "max") -> None:
        super().__init__()
        if pooling not in ("max", "avg"):
            raise ValueError(f"pooling must be 'max' or 'avg', got {pooling!r}")
        self.arch = arch
        self.names = layer_names(arch)
        layers: list[nn.Module] = []
        in_ch = 3
        for n_conv, width in zip(BLOCKS[arch], WIDTHS, strict=True):
            for _ in range(n_conv):
                layers += [nn.Conv2d(in_ch, width, 3, padding=1), nn.ReLU(inplace=False)]
                in_ch = width
            layers.append(nn.MaxPool2d(2, 2) if pooling == "max" else nn.AvgPool2d(2, 2))
        self.features = nn.Sequential(*layers)

    def index(self, name: str) -> int:
        return self.names.index(name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)
