"""Reflection padding that stays in the autocast dtype.

CPU autocast runs ``reflection_pad2d`` in fp32: every padded map of a bf16 network doubled in size and was
cast back to bf16 by the next convolution (at 1024 px and 32 channels: 12 ms per pad plus the cast, vs 3 ms
here). Outside autocast this is plain ``F.pad(mode="reflect")``, so training in fp32 and ONNX export see
the usual operator.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ReflectPad(nn.Module):
    """Drop-in for ``nn.ReflectionPad2d(p)`` (same output, no parameters)."""

    def __init__(self, p: int) -> None:
        super().__init__()
        self.p = int(p)

    def extra_repr(self) -> str:
        return str(self.p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.p
        if p == 0:
            return x
        if not torch.is_autocast_enabled(x.device.type) or torch.onnx.is_in_onnx_export():
            return F.pad(x, (p, p, p, p), mode="reflect")
        n, c, h, w = x.shape
        if h <= p or w <= p:  # the same error F.pad gives, in words
            raise ValueError(f"reflection padding of {p} needs more than {p}x{p} pixels, got {h}x{w}")
        fmt = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
        out = torch.empty((n, c, h + 2 * p, w + 2 * p), dtype=x.dtype, device=x.device, memory_format=fmt)
        out[:, :, p:p + h, p:p + w] = x
        for i in range(1, p + 1):  # rows first, then whole columns (which fills the corners)
            out[:, :, p - i, p:p + w] = x[:, :, i]
            out[:, :, p + h - 1 + i, p:p + w] = x[:, :, h - 1 - i]
        for j in range(1, p + 1):
            out[:, :, :, p - j] = out[:, :, :, p + j]
            out[:, :, :, p + w - 1 + j] = out[:, :, :, p + w - 1 - j]
        return out
