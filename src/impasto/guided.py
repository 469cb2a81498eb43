"""Guided upsampling (the fast guided filter, He & Sun 2015): a result computed at a small size brought to
the photo's full size with the full-size photo as the guide.

Why: a feed-forward network's cost grows with the pixels it sees, while a stylization's look (the size of
its strokes relative to the picture) is set at a working size. Within each small window the low-resolution
result is fitted as an affine function of the low-resolution photo's colour; those per-pixel affine maps
are smoothed, upsampled and applied to the full-size photo, so the photo's own edges come back sharp
where plain bilinear upscaling blurs them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["guided_upsample"]


def _box(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over a (2r+1)^2 window, edges replicated (so border windows are not darkened)."""
    k = 2 * radius + 1
    return F.avg_pool2d(F.pad(x, (radius,) * 4, mode="replicate"), k, stride=1)


def _inverse3(m: torch.Tensor) -> torch.Tensor:
    """Inverses of (..., 3, 3) matrices by cofactors: elementwise, where a batched solve over the quarter
    million windows of a 512 px image cost a sixth of the upsampling here."""
    a, b, c = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    d, e, f = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    g, h, i = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    co = torch.stack([e * i - f * h, c * h - b * i, b * f - c * e,
                      f * g - d * i, a * i - c * g, c * d - a * f,
                      d * h - e * g, b * g - a * h, a * e - b * d], dim=-1).unflatten(-1, (3, 3))
    det = a * co[..., 0, 0] + b * co[..., 1, 0] + c * co[..., 2, 0]
    tiny = torch.finfo(m.dtype).tiny  # a flat window with a minute eps: finite, not inf/NaN
    det = torch.where(det < 0, det.clamp(max=-tiny), det.clamp(min=tiny))
    return co / det[..., None, None]


def _cross(a: torch.Tensor, b: torch.Tensor, mean_a: torch.Tensor, mean_b: torch.Tensor, radius: int
           ) -> torch.Tensor:
    """Windowed covariances cov(a_i, b_j) for every channel pair: (N, H, W, Ca, Cb)."""
    prods = (a.unsqueeze(2) * b.unsqueeze(1)).flatten(1, 2)  # (N, Ca*Cb, H, W)
    n, _, h, w = prods.shape
    cov = _box(prods, radius).view(n, a.shape[1], b.shape[1], h, w) - mean_a.unsqueeze(2) * mean_b.unsqueeze(1)
    return cov.permute(0, 3, 4, 1, 2)


def _apply(a: torch.Tensor, b: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
    """``a^T guide + b`` per pixel: ``a`` (N, 3, C, H, W), ``b`` (N, C, H, W), summed over the guide's
    channels without an (N, 3, C, H, W) temporary."""
    for i in range(a.shape[1]):
        b = torch.addcmul(b, a[:, i], guide[:, i:i + 1])
    return b


def guided_upsample(result: torch.Tensor, guide_small: torch.Tensor, guide: torch.Tensor, radius: int = 1,
                    eps: float = 1e-3, keep_residual: bool = True) -> torch.Tensor:
    """``result`` (N, C, h, w), computed from ``guide_small`` (N, 3, h, w), brought to ``guide``'s size
    (N, 3, H, W). ``radius``: the window at the small size; ``eps``: how strongly a flat window's fit is
    pulled to a constant (larger: smoother). ``keep_residual``: add back, upsampled, what the local fit
    misses at the small size (texture that does not follow the photo's colours: the painting's strokes),
    so the output at the small size is ``result`` itself. Values in [0, 1]."""
    with torch.autocast(result.device.type, enabled=False):
        p, i_lo, i_hi = result.float(), guide_small.float(), guide.float()
        mean_i, mean_p = _box(i_lo, radius), _box(p, radius)
        cov_ii = _cross(i_lo, i_lo, mean_i, mean_i, radius)
        cov_ip = _cross(i_lo, p, mean_i, mean_p, radius)
        eye = torch.eye(i_lo.shape[1], dtype=p.dtype, device=p.device)
        a = _inverse3(cov_ii + eps * eye) @ cov_ip  # (N, h, w, 3, C): p ~ a^T i + b per window
        b = mean_p - torch.einsum("nhwic,nihw->nchw", a, mean_i)
        n, h, w, ci, c = a.shape
        a, b = _box(a.reshape(n, h, w, ci * c).permute(0, 3, 1, 2), radius), _box(b, radius)
        size = tuple(i_hi.shape[-2:])
        if keep_residual:
            b = b + (p - _apply(a.view(n, ci, c, h, w), b, i_lo))
        a = F.interpolate(a, size=size, mode="bilinear", align_corners=False).view(n, ci, c, *size)
        b = F.interpolate(b, size=size, mode="bilinear", align_corners=False)
        return _apply(a, b, i_hi).clamp(0, 1)
