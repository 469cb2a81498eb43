"""Colour control (Gatys et al. 2017, "Controlling Perceptual Factors in Neural Style Transfer").

* luminance-only transfer: stylize the luminance channel, keep the content's chrominance (YIQ);
* colour histogram matching: recolour the style image so its mean and covariance match the
  content's before stylizing (a linear map, the "Image Analogies" eigen-decomposition variant).
"""

from __future__ import annotations

import torch

from impasto.device import eigh

_RGB2YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]])


def rgb_to_yiq(x: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,njhw->nihw", _RGB2YIQ.to(x), x)


def yiq_to_rgb(x: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,njhw->nihw", torch.linalg.inv(_RGB2YIQ).to(x), x)


def luminance(x: torch.Tensor) -> torch.Tensor:
    """(N,3,H,W) RGB -> (N,3,H,W) grey: Y replicated, so a VGG can read it."""
    return rgb_to_yiq(x)[:, :1].expand(-1, 3, -1, -1).contiguous()


def match_luminance(style: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Style luminance shifted and scaled to the content's mean and std (keeps the style's texture)."""
    ys, yc = style[:, :1], content[:, :1]  # population std: the sample std of a 1x1 photo is NaN
    out = (ys - ys.mean()) * (yc.std(correction=0) / (ys.std(correction=0) + 1e-6)) + yc.mean()
    return out.clamp(0, 1).expand(-1, 3, -1, -1).contiguous()


def combine_luminance(stylized_grey: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Y from the stylized grey image, I and Q from the content."""
    c = rgb_to_yiq(content)
    y = stylized_grey.mean(dim=1, keepdim=True)
    return yiq_to_rgb(torch.cat([y, c[:, 1:]], dim=1)).clamp(0, 1)


def _sqrt_and_inv_sqrt(cov: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    vals, vecs = eigh(cov)
    vals = vals.clamp_min(1e-6)
    return vecs @ torch.diag(vals.sqrt()) @ vecs.T, vecs @ torch.diag(vals.rsqrt()) @ vecs.T


def match_color_histogram(style: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Recolour ``style`` so its RGB mean and covariance equal those of ``content``."""
    def stats(img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        flat = img[0].double().reshape(3, -1)
        mu = flat.mean(dim=1, keepdim=True)
        centered = flat - mu
        return mu, centered @ centered.T / flat.shape[1]

    mu_s, cov_s = stats(style)
    mu_c, cov_c = stats(content)
    sqrt_c, _ = _sqrt_and_inv_sqrt(cov_c)
    _, inv_sqrt_s = _sqrt_and_inv_sqrt(cov_s)
    a = sqrt_c @ inv_sqrt_s
    flat = style[0].double().reshape(3, -1)
    out = a @ (flat - mu_s) + mu_c
    return out.reshape_as(style[0]).unsqueeze(0).to(style.dtype).clamp(0, 1)
