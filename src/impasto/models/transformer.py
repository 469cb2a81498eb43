"""Johnson et al.'s image transformer network, with conditional instance norm for N styles.

Reflection padding (no border artefacts), instance norm (Ulyanov), residual blocks, and
nearest-neighbour upsampling followed by a convolution instead of transposed convolutions (no
checkerboard, Odena et al. 2016). With ``n_styles > 1`` every norm layer holds one (gamma, beta) per
style (Dumoulin et al. 2017): one network, N styles, and blends by mixing those parameters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from impasto.models import files
from impasto.models.padding import ReflectPad

KIND = "fast-style"


class CondInstanceNorm(nn.Module):
    """Instance norm whose affine parameters are a weighted mix of per-style (gamma, beta) rows."""

    def __init__(self, channels: int, n_styles: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.gamma = nn.Parameter(torch.ones(n_styles, channels))
        self.beta = nn.Parameter(torch.zeros(n_styles, channels))

    def forward(self, x: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
        """``mix``: (N, n_styles) weights, rows summing to 1 (one-hot for a single style)."""
        g = (mix.to(self.gamma.dtype) @ self.gamma)[:, :, None, None]
        b = (mix.to(self.beta.dtype) @ self.beta)[:, :, None, None]
        return self.norm(x) * g.to(x.dtype) + b.to(x.dtype)


class ConvNorm(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, stride: int, n_styles: int, *, relu: bool = True,
                 upsample: bool = False, norm: bool = True) -> None:
        super().__init__()
        self.upsample, self.relu = upsample, relu
        self.pad = ReflectPad(k // 2)
        self.conv = nn.Conv2d(cin, cout, k, stride)
        self.norm = CondInstanceNorm(cout, n_styles) if norm else None

    def forward(self, x: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.conv(self.pad(x))
        if self.norm is not None:
            x = self.norm(x, mix)
        return F.relu(x) if self.relu else x


class Residual(nn.Module):
    def __init__(self, channels: int, n_styles: int) -> None:
        super().__init__()
        self.a = ConvNorm(channels, channels, 3, 1, n_styles)
        self.b = ConvNorm(channels, channels, 3, 1, n_styles, relu=False)

    def forward(self, x: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
        return x + self.b(self.a(x, mix), mix)


class TransformerNet(nn.Module):
    """Image in [0,1] -> stylized image in [0,1]; ``width`` 32 is Johnson's network, 16 a 4x lighter one."""

    def __init__(self, n_styles: int = 1, width: int = 32, n_residual: int = 5) -> None:
        super().__init__()
        self.n_styles, self.width, self.n_residual = n_styles, width, n_residual
        w = width
        self.down = nn.ModuleList([ConvNorm(3, w, 9, 1, n_styles), ConvNorm(w, 2 * w, 3, 2, n_styles),
                                   ConvNorm(2 * w, 4 * w, 3, 2, n_styles)])
        self.res = nn.ModuleList([Residual(4 * w, n_styles) for _ in range(n_residual)])
        self.up = nn.ModuleList([ConvNorm(4 * w, 2 * w, 3, 1, n_styles, upsample=True),
                                 ConvNorm(2 * w, w, 3, 1, n_styles, upsample=True),
                                 ConvNorm(w, 3, 9, 1, n_styles, relu=False, norm=False)])

    def style_mix(self, batch: int, style: int | torch.Tensor | None, device: torch.device) -> torch.Tensor:
        """(batch, n_styles) mixing weights from an index, a weight vector, or None (style 0)."""
        if style is None:
            style = 0
        if isinstance(style, int):
            if not 0 <= style < self.n_styles:
                raise IndexError(f"style index {style} out of range (model has {self.n_styles})")
            mix = F.one_hot(torch.tensor(style), self.n_styles).float()
        else:
            mix = style.float()
        if mix.dim() == 1:
            mix = mix.unsqueeze(0).expand(batch, -1)
        return mix.to(device)

    def forward(self, x: torch.Tensor, style: int | torch.Tensor | None = None) -> torch.Tensor:
        h, w = x.shape[-2:]
        mix = self.style_mix(x.shape[0], style, x.device)
        # pad to a multiple of 4 so the two stride-2 stages invert exactly at any input size
        # (always padding, even by 0, keeps the traced ONNX graph valid for every input size)
        ph, pw = (4 - h % 4) % 4, (4 - w % 4) % 4
        y = F.pad(x, (0, pw, 0, ph), mode="reflect")
        for layer in self.down:
            y = layer(y, mix)
        for block in self.res:
            y = block(y, mix)
        for layer in self.up:
            y = layer(y, mix)
        return torch.sigmoid(y[..., :h, :w])


def save_model(path: str | Path, net: TransformerNet, meta: dict[str, Any]) -> Path:
    return files.save(path, KIND, net.state_dict(), meta)


def load_model(path: str | Path) -> tuple[TransformerNet, dict[str, Any]]:
    """The network a fast-style file holds, in eval mode, and its metadata."""
    tensors, meta = files.load(path, KIND)
    n = files.meta_int(meta, "n_styles", 1, 10_000, where=path)
    width = files.meta_int(meta, "width", 1, 1024, where=path)
    blocks = files.meta_int(meta, "n_residual", 0, 100, default=5, where=path)
    net = files.build_checked(path, lambda: TransformerNet(n, width, blocks), tensors, "fast-style network")
    return net.eval(), meta
