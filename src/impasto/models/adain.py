"""Arbitrary style transfer with adaptive instance normalization (Huang & Belongie 2017).

The content path and the style path share the pretrained VGG encoder (up to relu4_1); AdaIN gives the
content features the style's per-channel mean and std; a decoder that mirrors the encoder turns the
result back into an image. An optional PatchGAN discriminator adds an adversarial loss on stylized vs
real paintings.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from impasto.losses import mean_std
from impasto.models.padding import ReflectPad
from impasto.models.patchgan import PatchDiscriminator

__all__ = ["Decoder", "PatchDiscriminator", "adain", "masked_adain"]

ENCODER_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
BOTTLENECK = "relu4_1"


def adain(content: torch.Tensor, style: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Content features with the style features' per-channel mean and std (both N,C,H,W)."""
    mc, sc = mean_std(content, eps)
    ms, ss = mean_std(style, eps)
    return ((content.float() - mc) / sc * ss + ms).to(content.dtype)


def masked_adain(content: torch.Tensor, styles: list[torch.Tensor], mask: torch.Tensor,
                 eps: float = 1e-5) -> torch.Tensor:
    """Two styles: ``styles[0]`` where ``mask`` is 1, ``styles[1]`` where it is 0; statistics of the
    content are taken within each region, as in the paper's spatial control."""
    m = F.interpolate(mask.float(), size=content.shape[-2:], mode="bilinear", align_corners=False).clamp(0, 1)
    out = torch.zeros_like(content, dtype=torch.float32)
    f = content.float()
    for region, style in ((m, styles[0]), (1 - m, styles[1])):
        w = region.sum(dim=(2, 3), keepdim=True).clamp_min(1.0)
        mc = (f * region).sum(dim=(2, 3), keepdim=True) / w
        sc = (((f - mc) ** 2 * region).sum(dim=(2, 3), keepdim=True) / w + eps).sqrt()
        ms, ss = mean_std(style, eps)
        out = out + region * ((f - mc) / sc * ss + ms)
    return out.to(content.dtype)


def _conv(cin: int, cout: int, relu: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [ReflectPad(1), nn.Conv2d(cin, cout, 3)]
    return [*layers, nn.ReLU(inplace=True)] if relu else layers


class Decoder(nn.Module):
    """Mirror of VGG up to relu4_1: nearest upsampling + reflection-padded convolutions (``slim`` 2 halves
    the channels for speed)."""

    def __init__(self, slim: int = 1) -> None:
        super().__init__()
        c = [512, 256 // slim, 128 // slim, 64 // slim]
        self.slim = slim
        self.net = nn.Sequential(
            *_conv(512, c[1]), nn.Upsample(scale_factor=2, mode="nearest"),
            *_conv(c[1], c[1]), *_conv(c[1], c[1]), *_conv(c[1], c[1]), *_conv(c[1], c[2]),
            nn.Upsample(scale_factor=2, mode="nearest"),
            *_conv(c[2], c[2]), *_conv(c[2], c[3]), nn.Upsample(scale_factor=2, mode="nearest"),
            *_conv(c[3], c[3]), *_conv(c[3], 3, relu=False),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """relu4_1-shaped features -> image (unbounded during training; clamp to [0,1] to view)."""
        return self.net(features)
