"""Loss terms, each a small weighted module: feature dict in, scalar (fp32) out.

Layering after pystiche: the encoder gives features, a representation (Gram matrix, mean/std) is
computed from them, and a score compares it with a target. Every term is normalized by default so
that its value means the same thing at any image size and on any layer:

* content: ``||F - T||^2 / ||T||^2`` (relative squared error of the features)
* Gram style, per layer: ``||G - Gt||^2 / ||Gt||^2`` with ``G = F F^T / (H W)``
* total variation: mean squared difference of neighbouring pixels

``normalize=False`` gives the classic un-normalized forms (plain MSE, Gram divided by C H W) that
neural-style uses, which the benchmarks need for like-for-like comparisons.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

Features = Mapping[str, torch.Tensor]

EPS = 1e-8


#: below this many pixels per channel the fp32 product is cheap enough; above it bf16 features use
#: bf16 products summed in fp32 (3x faster on AVX512-BF16 CPUs)
BF16_GRAM_MIN_PIXELS = 1024


def _chunks(hw: int) -> int:
    """How many slices of the pixel axis to multiply separately: each partial Gram is rounded to bf16
    on its own and the sum is fp32, so the rounding error shrinks like 1/sqrt(chunks) (64 slices: 2e-4
    relative, vs 1.5e-3 for one bf16 product); slices stay >= 256 pixels so the matmuls stay efficient."""
    for k in (64, 32, 16, 8, 4, 2):
        if hw % k == 0 and hw // k >= 256:
            return k
    return 1


class _Gram(torch.autograd.Function):
    """G = F F^T / d accumulated in fp32, with a backward of one matmul, dF = (dG + dG^T) F / d, instead
    of the two matmuls and an add that autograd would record: the Gram was a quarter of a Gatys step.

    bf16 features (autocast on a CPU or GPU) are multiplied in bf16 by slices of the pixel axis whose
    partial products are summed in fp32 (see :func:`_chunks`); the gradient goes back to bf16 features,
    so computing it in bf16 loses nothing. Other dtypes are multiplied in fp32."""

    @staticmethod
    def forward(ctx: Any, f: torch.Tensor, divisor: float) -> torch.Tensor:  # f: (N, C, HW)
        ctx.divisor, ctx.in_dtype = divisor, f.dtype
        with torch.autocast(f.device.type, enabled=False):  # our precision, even inside an autocast region
            n, c, hw = f.shape
            if f.dtype == torch.bfloat16 and hw >= BF16_GRAM_MIN_PIXELS:
                ctx.save_for_backward(f)
                k = _chunks(hw)
                fk = f.reshape(n, c, k, hw // k).transpose(1, 2).reshape(n * k, c, hw // k)
                return torch.bmm(fk, fk.transpose(1, 2)).view(n, k, c, c).sum(1, dtype=torch.float32).div_(divisor)
            f32 = f.to(torch.promote_types(f.dtype, torch.float32))
            ctx.save_for_backward(f32)
            return torch.bmm(f32, f32.transpose(1, 2)).div_(divisor)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (f,) = ctx.saved_tensors
        sym = ((grad + grad.transpose(1, 2)) / ctx.divisor).to(f.dtype)
        with torch.autocast(f.device.type, enabled=False):
            # (F^T S)^T = S F for symmetric S, written so channels-last features get a channels-last grad
            return torch.bmm(f.transpose(1, 2), sym).transpose(1, 2).to(ctx.in_dtype), None


def gram_matrix(features: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, C) in fp32; divided by H*W (normalize) or by C*H*W (neural-style)."""
    n, c, h, w = features.shape
    f = features.reshape(n, c, h * w)
    return _Gram.apply(f, float(h * w) if normalize else float(c * h * w))


def mean_std(features: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std, (N, C, 1, 1) each: the statistics AdaIN transfers."""
    f = features.float()
    mean = f.mean(dim=(2, 3), keepdim=True)
    std = (f.var(dim=(2, 3), keepdim=True, unbiased=False) + eps).sqrt()
    return mean, std


def _relative_sq_error(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (x - target).pow(2).sum() / (target.pow(2).sum() + EPS)


class ContentLoss(nn.Module):
    """Feature reconstruction at one layer (Gatys' ``conv4_2``/``relu4_2``)."""

    def __init__(self, layer: str, target: torch.Tensor, weight: float = 1.0, normalize: bool = True) -> None:
        super().__init__()
        self.layer, self.weight, self.normalize = layer, float(weight), normalize
        self.register_buffer("target", target.detach().float())

    def forward(self, features: Features) -> torch.Tensor:
        f = features[self.layer].float()
        value = _relative_sq_error(f, self.target) if self.normalize else (f - self.target).pow(2).mean()
        return self.weight * value


class GramStyleLoss(nn.Module):
    """Sum over layers of ``layer_weight * score(Gram(F), Gram target)``; targets may be blends."""

    def __init__(
        self,
        targets: Mapping[str, torch.Tensor],
        layer_weights: Mapping[str, float] | None = None,
        weight: float = 1.0,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        self.layers = list(targets)
        self.weight, self.normalize = float(weight), normalize
        lw = layer_weights or {}
        self.layer_weights = {name: float(lw.get(name, 1.0)) for name in self.layers}
        for i, name in enumerate(self.layers):
            self.register_buffer(f"target_{i}", targets[name].detach().float())

    def target(self, layer: str) -> torch.Tensor:
        return getattr(self, f"target_{self.layers.index(layer)}")

    def per_layer(self, features: Features) -> dict[str, torch.Tensor]:
        """Unweighted score of each layer (what the calibration and reports look at)."""
        out = {}
        for name in self.layers:
            g = gram_matrix(features[name], self.normalize)
            t = self.target(name)
            out[name] = _relative_sq_error(g, t) if self.normalize else (g - t).pow(2).mean()
        return out

    def forward(self, features: Features) -> torch.Tensor:
        scores = self.per_layer(features)
        total = sum(self.layer_weights[n] * s for n, s in scores.items())
        return self.weight * total  # type: ignore[return-value]

    @staticmethod
    def targets_from(features: list[Features], blend: list[float], layers: list[str], normalize: bool = True
                     ) -> dict[str, torch.Tensor]:
        """Blend several styles by a weighted average of their Gram matrices."""
        total = sum(blend)
        return {
            name: sum(w / total * gram_matrix(f[name], normalize) for f, w in zip(features, blend, strict=True))
            for name in layers
        }


class TVLoss(nn.Module):
    """Total variation on pixels: mean squared (or absolute) neighbour difference."""

    def __init__(self, weight: float = 1.0, normalize: bool = True) -> None:
        super().__init__()
        self.weight, self.normalize = float(weight), normalize

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        dx = image[..., :, 1:] - image[..., :, :-1]
        dy = image[..., 1:, :] - image[..., :-1, :]
        if self.normalize:
            value = dx.float().pow(2).mean() + dy.float().pow(2).mean()
        else:  # neural-style: sum of absolute differences
            value = dx.float().abs().sum() + dy.float().abs().sum()
        return self.weight * value
