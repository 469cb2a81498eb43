"""Guided upsampling: what it reproduces exactly and what it keeps that bilinear upscaling loses."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from impasto.guided import guided_upsample
from impasto.io import resize


def _photo(h: int = 96, w: int = 128) -> torch.Tensor:
    """Smooth colour ramps with a hard vertical edge and a small bright square."""
    y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    img = torch.stack([0.2 + 0.5 * x, 0.3 + 0.4 * y, 0.5 - 0.3 * x * y])
    img[:, :, w // 2:] = img[:, :, w // 2:] * 0.4 + 0.5
    img[:, 10:14, 20:24] = 0.95
    return img.clamp(0, 1).unsqueeze(0)


def test_a_result_that_is_an_affine_colour_map_of_the_photo_is_reproduced_at_full_size():
    """Where the small result is exactly A @ photo + b, the fit is exact in every window and the full-size
    output is that same map applied to the full-size photo (a textured photo: every window's colours span
    three dimensions, so the fit is unique)."""
    torch.manual_seed(0)
    big = (_photo() + 0.2 * torch.rand(1, 3, 96, 128)).clamp(0, 1)
    small = resize(big, (48, 64))
    mix = torch.tensor([[0.5, 0.3, 0.1], [-0.2, 0.6, 0.2], [0.1, 0.1, 0.4]])
    shift = torch.tensor([0.1, 0.2, 0.15]).view(1, 3, 1, 1)

    def paint(img: torch.Tensor) -> torch.Tensor:
        return torch.einsum("ij,njhw->nihw", mix, img) + shift

    out = guided_upsample(paint(small), small, big, radius=1, eps=1e-8)
    err = (out - paint(big)).abs()
    assert out.shape == big.shape
    assert err.mean() < 3e-4 and err.max() < 1e-2  # float32 inverses of small windowed covariances


def test_the_photos_edges_come_back_sharper_than_bilinear_upscaling():
    """A stylized-looking result (a colour map plus a little noise) upsampled 4x without the residual:
    closer to the same map of the full-size photo than bilinear upscaling is, because the full-size edge
    guides it."""
    torch.manual_seed(0)
    big = _photo(192, 256)
    small = resize(big, (48, 64))
    result = (1 - small) * 0.8 + 0.02 * torch.randn_like(small)
    target = (1 - big) * 0.8
    guided = guided_upsample(result.clamp(0, 1), small, big, keep_residual=False)
    bilinear = F.interpolate(result.clamp(0, 1), size=big.shape[-2:], mode="bilinear", align_corners=False)
    err_guided = (guided - target).abs().mean()
    err_bilinear = (bilinear - target).abs().mean()
    assert err_guided < 0.7 * err_bilinear


def test_with_the_residual_the_result_is_kept_exactly_at_its_own_size():
    """keep_residual (the default): what the local colour fit misses (strokes that do not follow the photo)
    is added back, so 'upsampling' to the small size itself returns the result, and a 2x output shrunk
    back is close to it."""
    torch.manual_seed(0)
    big = _photo(96, 128)
    small = resize(big, (48, 64))
    strokes = (small.mean(dim=1, keepdim=True) + 0.3 * torch.rand(1, 3, 48, 64)).clamp(0, 1)
    assert torch.allclose(guided_upsample(strokes, small, small), strokes, atol=1e-4)
    without = guided_upsample(strokes, small, small, keep_residual=False)
    assert (without - strokes).abs().mean() > 0.03  # the fit alone smooths the strokes away
    up = guided_upsample(strokes, small, big)
    assert (resize(up, (48, 64)) - strokes).abs().mean() < 0.7 * (resize(guided_upsample(
        strokes, small, big, keep_residual=False), (48, 64)) - strokes).abs().mean()
