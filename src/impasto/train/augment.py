"""Differentiable augmentation for GANs on small folders (DiffAugment, Zhao et al. 2020).

Why: with a few hundred images the discriminator memorises the training set within a few hundred
steps, its gradients stop carrying information and the generator oscillates or collapses. The same
random colour shift, translation and cutout applied to real *and* generated images, in both the
discriminator's and the generator's phase, keeps the discriminator from memorising while, being
differentiable, it still passes gradients to the generator. Every op works on images in [0, 1].
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from impasto.errors import InputError

POLICIES = ("color", "translation", "cutout")


def parse_policy(text: str) -> tuple[str, ...]:
    """``"color,translation"`` -> the ops in that order; ValueError names an unknown one."""
    ops = tuple(t.strip() for t in text.split(",") if t.strip())
    bad = [t for t in ops if t not in POLICIES]
    if bad:
        raise ValueError(f"unknown augmentation {bad[0]!r}; choose from {', '.join(POLICIES)}")
    return ops


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    return (torch.rand(n, 1, 1, 1, generator=gen) * (hi - lo) + lo).to(like.device, like.dtype)


def color(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Brightness +-0.25, saturation x[0, 2], contrast x[0.5, 1.5], per image."""
    n = x.shape[0]
    x = x + _uniform(n, -0.25, 0.25, gen, x)
    mean_c = x.mean(dim=1, keepdim=True)
    x = (x - mean_c) * _uniform(n, 0.0, 2.0, gen, x) + mean_c
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * _uniform(n, 0.5, 1.5, gen, x) + mean


def translation(x: torch.Tensor, gen: torch.Generator, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its side in x and y, whole pixels, zeros coming in."""
    n, _, h, w = x.shape
    shift = torch.stack([torch.randint(-int(w * ratio), int(w * ratio) + 1, (n,), generator=gen),
                         torch.randint(-int(h * ratio), int(h * ratio) + 1, (n,), generator=gen)], 1).float()
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, :, 2] = -2 * shift / torch.tensor([w, h])  # normalised coordinates: whole-pixel shifts
    grid = F.affine_grid(theta.to(x.device, torch.float32), list(x.shape), align_corners=False)
    return F.grid_sample(x.float(), grid, mode="nearest", padding_mode="zeros", align_corners=False).to(x.dtype)


def cutout(x: torch.Tensor, gen: torch.Generator, ratio: float = 0.5) -> torch.Tensor:
    """Zero one square of ``ratio`` times the side per image, anywhere (it may overhang the border)."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio), int(w * ratio)
    top = torch.randint(0, h + 1 - ch % 2, (n, 1, 1), generator=gen) - ch // 2
    left = torch.randint(0, w + 1 - cw % 2, (n, 1, 1), generator=gen) - cw // 2
    ys, xs = torch.arange(h).view(1, h, 1), torch.arange(w).view(1, 1, w)
    inside = (ys >= top) & (ys < top + ch) & (xs >= left) & (xs < left + cw)
    return x * (~inside).unsqueeze(1).to(x.device, x.dtype)


_OPS = {"color": color, "translation": translation, "cutout": cutout}


def diff_augment(x: torch.Tensor, policy: tuple[str, ...], gen: torch.Generator) -> torch.Tensor:
    """``x`` through each op of ``policy`` with draws from ``gen`` (a CPU generator: a resumed run
    draws what the uninterrupted one would)."""
    for op in policy:
        x = _OPS[op](x, gen)
    return x


class DiffAugment:
    """A trainer's ``--diff-augment`` setting: parsed once, applied to every discriminator input, and
    named (``color,translation``) for the model file and the checkpoint."""

    def __init__(self, flag: str) -> None:
        try:
            self.policy = parse_policy(flag)
        except ValueError as exc:
            raise InputError(f"--diff-augment: {exc}") from exc
        self.name = ",".join(self.policy)

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return diff_augment(x, self.policy, gen) if self.policy else x


def check_same_recipe(saved: dict[str, Any], current: dict[str, Any], unrecorded: dict[str, Any]) -> None:
    """Refuse to resume a run under other small-folder settings (``--ema``, ``--diff-augment``): the
    result would be scored under one recipe's name while trained under two. ``unrecorded``: what a
    checkpoint written before a setting was recorded ran with."""
    saved = {**unrecorded, **saved}
    if saved != current:
        raise InputError(f"--resume: this run was trained with {saved}, not {current}; pass the same settings "
                         "or use another --out")
