"""Evaluation metrics, each with its formula; images are (1,3,H,W) tensors in [0,1].

* ``psnr``: 10 log10(1 / MSE); identical images give ``inf``.
* ``ssim``: Wang et al. 2004 with an 11x11 Gaussian window (sigma 1.5), K1 0.01, K2 0.03, on luminance
  (Y of YIQ) or averaged over RGB; matches ``skimage.metrics.structural_similarity(...,
  gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1)``.
* ``content_loss``: relative squared error of VGG relu4_2 features, ``||F(x)-F(c)||^2 / ||F(c)||^2``.
* ``style_loss``: mean over relu1_1..relu5_1 of ``||G(x)-G(s)||^2 / ||G(s)||^2`` (Gram / HW).
* ``perceptual_distance``: LPIPS-style but *uncalibrated* (no learned weights): features of relu1_2,
  relu2_2, relu3_3, relu4_3, relu5_3 unit-normalized over channels at each pixel, squared difference
  summed over channels, averaged over pixels, then over layers. 0 for identical images, at most 4.
* ``kernel_distance`` (KID) and ``kernel_distance_se`` (KID with its jackknife standard error): unbiased
  squared MMD of the same features with a cubic polynomial kernel; fair on small sets.
* ``vgg_fd``: Frechet distance between Gaussians fitted to two *sets* of images' VGG features
  (relu5_3, global average pooled): ``|mu1-mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^1/2)``. Like FID but
  with VGG-16 instead of Inception, so its numbers are not FID numbers.
* ``domain_features``: per image, the log of each channel's mean and spread at relu1_1..relu5_1 (the
  statistics AdaIN transfers, i.e. the painting's palette and texture) and pooled relu5_3 (its content);
  what ``impasto.probe.DomainProbe`` separates photos from paintings with.
* ``artfid_style``: ``(1 + perceptual distance to content) * (1 + vgg_fd to styles)``, after ArtFID
  (Wright & Ommer 2022) with the substitutions above.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from impasto.color import rgb_to_yiq
from impasto.device import eigh
from impasto.features import Encoder
from impasto.losses import gram_matrix

CONTENT_LAYER = "relu4_2"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
PERCEPTUAL_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")


@functools.lru_cache(maxsize=1)
def _encoder() -> Encoder:
    return Encoder([CONTENT_LAYER, *STYLE_LAYERS, *PERCEPTUAL_LAYERS])


def _same_size(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    if x.shape[-2:] == ref.shape[-2:]:
        return x
    return F.interpolate(x, size=ref.shape[-2:], mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)


def psnr(x: torch.Tensor, y: torch.Tensor) -> float:
    mse = F.mse_loss(x.double(), _same_size(y, x).double()).item()
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    r = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def _ssim_channel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean SSIM of (N,1,H,W) float64 images with data range 1 (valid window positions only)."""
    w = _gaussian_window().to(a)
    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = F.conv2d(a, w), F.conv2d(b, w)
    var_a = F.conv2d(a * a, w) - mu_a**2
    var_b = F.conv2d(b * b, w) - mu_b**2
    cov = F.conv2d(a * b, w) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.mean()


def ssim(x: torch.Tensor, y: torch.Tensor, channel: str = "luminance") -> float:
    a, b = x.double(), _same_size(y, x).double()
    if min(a.shape[-2:]) < 11:
        raise ValueError("SSIM needs images of at least 11x11 pixels")
    if channel == "luminance":
        return float(_ssim_channel(rgb_to_yiq(a)[:, :1], rgb_to_yiq(b)[:, :1]))
    if channel == "rgb":
        return float(sum(_ssim_channel(a[:, i:i + 1], b[:, i:i + 1]) for i in range(3)) / 3)
    raise ValueError(f"channel must be 'luminance' or 'rgb', got {channel!r}")


def _features(x: torch.Tensor) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        return {k: v.float() for k, v in _encoder()(x).items()}


def content_loss(stylized: torch.Tensor, content: torch.Tensor) -> float:
    a, b = _features(stylized)[CONTENT_LAYER], _features(_same_size(content, stylized))[CONTENT_LAYER]
    return float((a - b).pow(2).sum() / b.pow(2).sum().clamp_min(1e-12))


def style_grams(image: torch.Tensor) -> dict[str, torch.Tensor]:
    """The Gram matrices ``style_loss`` compares (compute once, compare with many)."""
    f = _features(image)
    return {n: gram_matrix(f[n]) for n in STYLE_LAYERS}


def gram_distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Mean over the style layers of ``||G_a - G_b||^2 / ||G_b||^2``."""
    return sum(float((a[n] - b[n]).pow(2).sum() / b[n].pow(2).sum().clamp_min(1e-12))
               for n in STYLE_LAYERS) / len(STYLE_LAYERS)


def style_loss(stylized: torch.Tensor, style: torch.Tensor) -> float:
    return gram_distance(style_grams(stylized), style_grams(style))


def perceptual_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    fa, fb = _features(x), _features(_same_size(y, x))
    total = 0.0
    for n in PERCEPTUAL_LAYERS:
        a = fa[n] / (fa[n].norm(dim=1, keepdim=True) + 1e-10)
        b = fb[n] / (fb[n].norm(dim=1, keepdim=True) + 1e-10)
        total += float((a - b).pow(2).sum(dim=1).mean())
    return total / len(PERCEPTUAL_LAYERS)


def set_features(images: list[torch.Tensor], size: int = 256) -> torch.Tensor:
    """(N, 512) globally pooled relu5_3 features, each image resized to ``size`` on the long side."""
    from impasto.io import resize_long

    rows = [_features(resize_long(img, size))["relu5_3"].mean(dim=(2, 3))[0] for img in images]
    return torch.stack(rows).double()


def domain_features(images: list[torch.Tensor], size: int = 256) -> torch.Tensor:
    """(N, 2 * 1472 + 512) float64 rows: log(mean + 0.01) and log(std + 0.01) of every channel at
    relu1_1..relu5_1, then pooled relu5_3; each image resized to ``size`` on the long side. The logs
    make a channel's twice-as-strong mean the same step at every layer and magnitude."""
    from impasto.io import resize_long

    rows = []
    for img in images:
        f = _features(resize_long(img, size))
        parts = []
        for n in STYLE_LAYERS:
            x = f[n][0].flatten(1)
            parts += [torch.log(x.mean(1) + 0.01), torch.log(x.std(1) + 0.01)]
        rows.append(torch.cat([*parts, f["relu5_3"][0].mean(dim=(1, 2))]))
    return torch.stack(rows).double()


def pooled_part(domain_rows: torch.Tensor) -> torch.Tensor:
    """The ``set_features`` rows inside ``domain_features`` rows (their last 512 columns), so a set that
    needs both goes through VGG once."""
    return domain_rows[:, -512:]


def _sqrtm_psd(m: torch.Tensor) -> torch.Tensor:
    vals, vecs = eigh((m + m.T) / 2)
    return vecs @ torch.diag(vals.clamp_min(0).sqrt()) @ vecs.T


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to rows of ``a`` and ``b`` (float64)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a = torch.cov(a.T) if a.shape[0] > 1 else torch.zeros(a.shape[1], a.shape[1], dtype=a.dtype)
    cov_b = torch.cov(b.T) if b.shape[0] > 1 else torch.zeros(b.shape[1], b.shape[1], dtype=b.dtype)
    sa = _sqrtm_psd(cov_a)
    cross = _sqrtm_psd(sa @ cov_b @ sa)  # Tr((A B)^1/2) = Tr((A^1/2 B A^1/2)^1/2)
    return float((mu_a - mu_b).pow(2).sum() + torch.trace(cov_a) + torch.trace(cov_b) - 2 * torch.trace(cross))


def kernel_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Unbiased squared MMD with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3 between rows of
    ``a`` and ``b`` (KID, Binkowski et al. 2018): unlike the Frechet distance it has no bias that grows
    as sets shrink, so it compares small sets (tens of images) fairly. 0 when the sets match."""
    if a.shape[0] < 2 or b.shape[0] < 2:
        raise ValueError("kernel_distance needs at least two rows in each set")
    d = a.shape[1]
    kaa, kbb, kab = ((x @ y.T / d + 1) ** 3 for x, y in ((a, a), (b, b), (a, b)))
    m, n = a.shape[0], b.shape[0]
    term_a = (kaa.sum() - kaa.diagonal().sum()) / (m * (m - 1))
    term_b = (kbb.sum() - kbb.diagonal().sum()) / (n * (n - 1))
    return float(term_a + term_b - 2 * kab.mean())


def kernel_distance_se(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    """(KID, its standard error): the same unbiased estimate as ``kernel_distance``, and the delete-one
    jackknife over both sets (the variance of a two-sample U-statistic is the sum of each sample's
    jackknife variance). Unlike the spread over overlapping random subsets it is an honest error bar for
    a difference between models, and it is exact in closed form from the kernel matrices. >= 3 rows each."""
    m, n = a.shape[0], b.shape[0]
    if m < 3 or n < 3:
        raise ValueError("kernel_distance_se needs at least three rows in each set")
    d = a.shape[1]
    kaa, kbb, kab = ((x.double() @ y.double().T / d + 1) ** 3 for x, y in ((a, a), (b, b), (a, b)))
    ra, rb = kaa.sum(1) - kaa.diagonal(), kbb.sum(1) - kbb.diagonal()  # off-diagonal row sums
    saa, sbb, sab = ra.sum(), rb.sum(), kab.sum()
    term_a, term_b, cross = saa / (m * (m - 1)), sbb / (n * (n - 1)), sab / (m * n)
    without_a = (saa - 2 * ra) / ((m - 1) * (m - 2)) + term_b - 2 * (sab - kab.sum(1)) / ((m - 1) * n)
    without_b = term_a + (sbb - 2 * rb) / ((n - 1) * (n - 2)) - 2 * (sab - kab.sum(0)) / (m * (n - 1))
    var = ((m - 1) / m * (without_a - without_a.mean()).pow(2).sum()
           + (n - 1) / n * (without_b - without_b.mean()).pow(2).sum())
    return float(term_a + term_b - 2 * cross), float(var.sqrt())


def vgg_fd(images_a: list[torch.Tensor], images_b: list[torch.Tensor]) -> float:
    return max(0.0, frechet_distance(set_features(images_a), set_features(images_b)))


def artfid_style(mean_perceptual_to_content: float, fd_to_styles: float) -> float:
    return (1 + mean_perceptual_to_content) * (1 + fd_to_styles)
