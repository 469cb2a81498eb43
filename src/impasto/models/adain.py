"""Arbitrary style transfer with adaptive instance normalization (Huang & Belongie 2017).

The content path and the style path share the pretrained VGG encoder (up to relu4_1); AdaIN gives the
content features the style's per-channel mean and std; a decoder that mirrors the encoder turns the
result back into an image. An optional PatchGAN discriminator adds an adversarial loss on stylized vs
real paintings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from impasto.device import eigh
from impasto.errors import ModelFileError
from impasto.losses import mean_std
from impasto.models import files
from impasto.models.padding import ReflectPad
from impasto.models.patchgan import PatchDiscriminator

__all__ = ["Decoder", "PatchDiscriminator", "SkipDecoder", "adain", "load_decoder", "masked_adain", "wct"]

KIND = "adain-decoder"
ENCODER_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
BOTTLENECK = "relu4_1"
#: channels of VGG's relu1_1..relu4_1, the levels a skip decoder takes AdaIN'd features from
LEVEL_CHANNELS = {"relu1_1": 64, "relu2_1": 128, "relu3_1": 256, "relu4_1": 512}


def adain(content: torch.Tensor, style: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Content features with the style features' per-channel mean and std (both N,C,H,W).

    Applied as one per-channel multiply-add in the features' own dtype (statistics in fp32): under
    bf16 an fp32 round trip of a 1024 px photo's relu2_1 map cost 0.25 s of a ~2 s stylization."""
    mc, sc = mean_std(content, eps)
    ms, ss = mean_std(style, eps)
    scale = ss / sc
    shift = ms - mc * scale
    return torch.addcmul(shift.to(content.dtype), content, scale.to(content.dtype))


def _sqrtm(cov: torch.Tensor, power: float, eps: float) -> torch.Tensor:
    """``cov ** power`` of symmetric PSD matrices (..., C, C) through their eigendecomposition."""
    e, v = eigh(cov)
    return (v * e.clamp_min(eps).pow(power).unsqueeze(-2)) @ v.transpose(-1, -2)


def _moments(rows: torch.Tensor, weight: torch.Tensor | None, eps: float
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean (N, 1, C), covariance (N, C, C) and the centred float32 copy (N, P, C: one row per position)
    of ``rows`` (N, H, W, C), optionally weighted per position by ``weight`` (N, P, 1); ``eps`` on the
    diagonal keeps a flat or tiny map invertible. Centred before the product: E[ff^T] - mm^T in float32
    lost 3% on a flat photo's relu2_1."""
    f = rows.to(torch.float32, memory_format=torch.contiguous_format, copy=True).flatten(1, 2)
    weighted = f if weight is None else f * weight
    total = (torch.full_like(f[:, :1, :1], f.shape[1]) if weight is None
             else weight.sum(dim=1, keepdim=True)).clamp_min(1.0)
    mean = weighted.sum(dim=1, keepdim=True) / total
    f.sub_(mean)
    cov = (f if weight is None else f * weight).transpose(1, 2) @ f / total
    return mean, cov + eps * torch.eye(f.shape[2], dtype=f.dtype, device=f.device), f


def _rows(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, H, W, C), a view: contiguous for a channels-last map (the CPU inference
    layout), where the (N, C, H*W) view of one needed strided copies of a 1024 px photo's relu2_1 (about
    2% of that call end to end, one core)."""
    return x.permute(0, 2, 3, 1)


def wct(content: torch.Tensor, style: torch.Tensor, region: torch.Tensor | None = None,
        eps: float = 1e-5) -> torch.Tensor:
    """Whitening and colouring (Li et al. 2017): content features (N, C, H, W) whose mean and full channel
    covariance are the style's, where AdaIN gives only each channel's mean and std. The statistics of the
    content are taken within ``region`` (N, 1, H, W weights) when given. The result is channels-last
    whatever the input's layout (the layout CPU inference runs in; a decoder's cat converts it if not).

    Why: at the skip decoder's relu2_1 level, matching the covariance instead of per-channel std took the
    held-out 'val' style distance from -0.419 to -0.448 (log10) and the style specificity from 0.78 to
    0.88 with the same decoder weights (benchmarks/README.md)."""
    with torch.autocast(content.device.type, enabled=False):  # covariances need fp32, not bf16 matmuls
        return _wct(content, style, region, eps)


def _wct(content: torch.Tensor, style: torch.Tensor, region: torch.Tensor | None, eps: float) -> torch.Tensor:
    n, c, h, w = content.shape
    weight = None if region is None else _rows(region).float().reshape(n, h * w, 1)
    _, cc, centred = _moments(_rows(content), weight, eps)
    ms, cs, _ = _moments(_rows(style), None, eps)
    # the square roots in float64: whitening divides by the small eigenvalues
    transform = (_sqrtm(cs.double(), 0.5, eps) @ _sqrtm(cc.double(), -0.5, eps)).float()
    out = torch.baddbmm(ms, centred, transform.transpose(1, 2))  # (f - m_c) T^T + m_s, row by row
    return out.reshape(n, h, w, c).permute(0, 3, 1, 2).to(content.dtype)  # channels-last NCHW


def _masked_adain_region(content: torch.Tensor, style: torch.Tensor, region: torch.Tensor,
                         eps: float = 1e-5) -> torch.Tensor:
    f = content.float()
    w = region.sum(dim=(2, 3), keepdim=True).clamp_min(1.0)
    mc = (f * region).sum(dim=(2, 3), keepdim=True) / w
    sc = (((f - mc) ** 2 * region).sum(dim=(2, 3), keepdim=True) / w + eps).sqrt()
    ms, ss = mean_std(style, eps)
    return (f - mc) / sc * ss + ms


def masked_adain(content: torch.Tensor, styles: list[torch.Tensor], mask: torch.Tensor,
                 eps: float = 1e-5, whiten: bool = False) -> torch.Tensor:
    """Two styles: ``styles[0]`` where ``mask`` is 1, ``styles[1]`` where it is 0; statistics of the
    content are taken within each region, as in the paper's spatial control (``whiten``: each region
    gets its style's full covariance, :func:`wct`, instead of per-channel mean and std)."""
    m = F.interpolate(mask.float(), size=content.shape[-2:], mode="bilinear", align_corners=False).clamp(0, 1)
    out = torch.zeros_like(content, dtype=torch.float32)
    for region, style in ((m, styles[0]), (1 - m, styles[1])):
        target = wct(content, style, region, eps).float() if whiten else _masked_adain_region(
            content, style, region, eps)
        out = out + region * target
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

    #: the encoder levels this decoder reads (AdaIN is applied at each)
    levels: tuple[str, ...] = (BOTTLENECK,)
    #: levels whose target is whitened and coloured (:func:`wct`) instead of AdaIN'd; a property of the
    #: trained file (its metadata), since the decoder learns the statistics it is given
    wct_levels: tuple[str, ...] = ()

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """{relu4_1: features} -> image (unbounded during training; clamp to [0,1] to view)."""
        return self.net(features[BOTTLENECK])


class SkipDecoder(nn.Module):
    """Decoder that also reads AdaIN'd relu3_1 and relu2_1 (and optionally relu1_1) features through
    skip connections, concatenated after each upsampling.

    Why: the plain decoder must redraw the photo's layout from relu4_1 alone (1/8 resolution), which is
    where AdaIN's halos and broken structure come from; with the shallower levels it only has to add
    the painting's texture to a layout it is handed, and each level carries the style's own
    statistics. ``strength`` still means one thing: every level is interpolated between the photo's
    features and the AdaIN target."""

    def __init__(self, slim: int = 2, skips: tuple[str, ...] = ("relu3_1", "relu2_1"), skip_scale: float = 1.0
                 ) -> None:
        super().__init__()
        #: skip features are multiplied by this before the convolutions (VGG's shallow activations are
        #: large; scaled down, an untrained decoder's first outputs stay small instead of collapsing)
        self.skip_scale = float(skip_scale)
        bad = [n for n in skips if n not in ("relu3_1", "relu2_1", "relu1_1")]
        if bad or len(set(skips)) != len(skips):
            raise ModelFileError(f"skip levels must be among relu3_1, relu2_1, relu1_1, got {files.short(list(skips))}")
        self.slim, self.skips = slim, tuple(skips)
        self.levels = (BOTTLENECK, *self.skips)
        self.wct_levels: tuple[str, ...] = ()
        c3, c2, c1 = 256 // slim, 128 // slim, 64 // slim

        def extra(level: str) -> int:
            return LEVEL_CHANNELS[level] if level in self.skips else 0

        self.head = nn.Sequential(*_conv(512, c3), nn.Upsample(scale_factor=2, mode="nearest"))
        self.at_quarter = nn.Sequential(*_conv(c3 + extra("relu3_1"), c3), *_conv(c3, c3), *_conv(c3, c2),
                                     nn.Upsample(scale_factor=2, mode="nearest"))
        self.at_half = nn.Sequential(*_conv(c2 + extra("relu2_1"), c2), *_conv(c2, c1),
                                  nn.Upsample(scale_factor=2, mode="nearest"))
        self.at_full = nn.Sequential(*_conv(c1 + extra("relu1_1"), c1), *_conv(c1, 3, relu=False))

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        x = self.head(features[BOTTLENECK])
        for level, block in (("relu3_1", self.at_quarter), ("relu2_1", self.at_half), ("relu1_1", self.at_full)):
            if level in self.skips:
                skip = features[level]
                if x.shape[-2:] != skip.shape[-2:]:  # VGG's pooling floors odd sizes; upsampling doubles
                    x = F.interpolate(x, size=skip.shape[-2:], mode="nearest")
                x = torch.cat([x, skip.to(x.dtype) * self.skip_scale], dim=1)
            x = block(x)
        return x


AnyDecoder = Decoder | SkipDecoder


def build_decoder(meta: dict[str, Any]) -> AnyDecoder:
    """The decoder a model file's metadata describes (files before the skip design say nothing: plain;
    files before ``wct_levels`` AdaIN every level)."""
    dec = _build_arch(meta)
    wct_levels = meta.get("wct_levels", [])
    if not isinstance(wct_levels, list) or not all(isinstance(n, str) and n in dec.levels for n in wct_levels):
        raise ModelFileError(f"AdaIN decoder metadata: wct_levels must be a list of the levels the decoder reads "
                             f"({', '.join(dec.levels)}), got {files.short(wct_levels)}")
    dec.wct_levels = tuple(wct_levels)
    return dec


def _build_arch(meta: dict[str, Any]) -> AnyDecoder:
    arch = meta.get("arch", "plain")
    slim = meta.get("slim", 1)
    if not isinstance(slim, int) or slim not in (1, 2, 4):
        raise ModelFileError(f"AdaIN decoder metadata: slim must be 1, 2 or 4, got {files.short(slim)}")
    if arch == "plain":
        return Decoder(slim)
    if arch == "skip":
        skips = meta.get("skips", ["relu3_1", "relu2_1"])
        if not isinstance(skips, list) or not all(isinstance(n, str) for n in skips):
            raise ModelFileError(f"AdaIN decoder metadata: skips must be a list of layer names, got "
                                 f"{files.short(skips)}")
        scale = meta.get("skip_scale", 1.0)
        if isinstance(scale, bool) or not isinstance(scale, int | float) or not 0 < scale <= 1:
            raise ModelFileError(f"AdaIN decoder metadata: skip_scale must be in (0, 1], got {files.short(scale)}")
        return SkipDecoder(slim, tuple(skips), float(scale))
    raise ModelFileError(f"AdaIN decoder metadata: unknown arch {files.short(arch)} (plain or skip)")


def decoder_meta(dec: AnyDecoder) -> dict[str, Any]:
    """What :func:`build_decoder` needs to rebuild ``dec``."""
    if isinstance(dec, SkipDecoder):
        arch = {"arch": "skip", "slim": dec.slim, "skips": list(dec.skips), "skip_scale": dec.skip_scale}
    else:
        arch = {"arch": "plain", "slim": dec.slim}
    return {**arch, "wct_levels": list(dec.wct_levels)}


def save_decoder(path: str | Path, dec: AnyDecoder, meta: dict[str, Any]) -> Path:
    return files.save(path, KIND, dec.state_dict(), {**meta, **decoder_meta(dec)})


def load_decoder(path: str | Path) -> tuple[AnyDecoder, dict[str, Any]]:
    tensors, meta = files.load(path, KIND)
    _check_backbone(path, meta)
    try:
        with torch.device("meta"):  # the metadata's checks, with no memory spent
            build_decoder(meta)
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc}") from exc
    dec = files.build_checked(path, lambda: build_decoder(meta), tensors, "AdaIN decoder")
    return dec.eval(), meta


def _check_backbone(path: str | Path, meta: dict[str, Any]) -> None:
    """The encoder the decoder was trained against must be one impasto knows (it is built from this name)."""
    from impasto.features.weights import Weights

    name = meta.get("backbone", "vgg16-keras-offline")
    if not isinstance(name, str) or name not in {w.value.name for w in Weights}:
        raise ModelFileError(f"{path}: metadata 'backbone' names no known VGG weights: "
                             f"{files.short(meta.get('backbone'))}")


def stylize_features(content: dict[str, torch.Tensor], styles: list[dict[str, torch.Tensor]],
                     weights: list[float], strength: float, dec: AnyDecoder,
                     mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The decoder's input: at each level ``dec`` reads, the AdaIN (or, at its ``wct_levels``, WCT)
    target, a blend of styles or two styles split by ``mask``, interpolated with the content's own
    features by ``strength``."""
    out = {}
    total = sum(weights)
    for n in dec.levels:
        fc = content[n]
        whiten = n in dec.wct_levels
        if mask is not None:
            t = masked_adain(fc, [s[n] for s in styles], mask, whiten=whiten)
        else:
            move = wct if whiten else adain
            t = sum(w / total * move(fc, s[n]) for w, s in zip(weights, styles, strict=True))
        out[n] = t if strength == 1 else strength * t + (1 - strength) * fc
    return out  # type: ignore[return-value]
