"""Tiled optimization for outputs larger than memory allows (e.g. 3840x2160 on 24 GiB).

At the largest scale the image is optimized tile by tile: overlapping tiles, each with its own content
target but the *global* style targets (Gram matrices of the whole style image), and only each tile's
interior written back, so convolution borders never show. Every pass shifts the tile grid by a random
offset, so whatever seam one pass leaves is inside a tile on the next.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

#: above this many pixels at one scale, optimize in tiles (a full VGG backward at ~4 MP already needs
#: ~10 GB in bf16; tiles keep the peak near that of one tile)
DEFAULT_MAX_PIXELS = 2048 * 2048
DEFAULT_TILE = 1024
DEFAULT_OVERLAP = 128


def tile_boxes(h: int, w: int, tile: int, overlap: int, offset: tuple[int, int]) -> Iterator[tuple[int, int, int, int]]:
    """(top, left, bottom, right) of tiles covering an h x w image, the grid shifted by ``offset``."""
    stride = tile - overlap
    oy, ox = offset[0] % stride, offset[1] % stride
    ys = sorted({min(max(0, y), max(0, h - tile)) for y in range(-oy, h, stride)})
    xs = sorted({min(max(0, x), max(0, w - tile)) for x in range(-ox, w, stride)})
    for y in ys:
        for x in xs:
            yield y, x, min(h, y + tile), min(w, x + tile)


def interior(box: tuple[int, int, int, int], h: int, w: int, margin: int) -> tuple[int, int, int, int]:
    """The part of a tile to write back: ``margin`` pixels trimmed on sides that are not image borders."""
    t, left, b, r = box
    return (t if t == 0 else t + margin, left if left == 0 else left + margin,
            b if b == h else b - margin, r if r == w else r - margin)


@dataclass(frozen=True)
class TilePlan:
    """How a large image is cut: tile side, overlap between neighbours, sweeps over shifted grids."""

    tile: int = DEFAULT_TILE
    overlap: int = DEFAULT_OVERLAP
    passes: int = 2


def optimize_tiled(
    image: torch.Tensor,
    content: torch.Tensor,
    step_tile: Callable[[torch.Tensor, torch.Tensor, int], dict[str, float]],
    *,
    iterations: int,
    plan: TilePlan = TilePlan(),
    generator: torch.Generator | None = None,
    on_pass: Callable[[int, dict[str, float]], bool | None] | None = None,
) -> torch.Tensor:
    """Run ``plan.passes`` sweeps over shifted tile grids; ``step_tile(tile_image, content_tile, n)``
    optimizes one tile in place for n iterations and returns its losses. Returns the updated full image."""
    tile, overlap, passes = plan.tile, plan.overlap, plan.passes
    h, w = image.shape[-2:]
    per_pass = max(1, iterations // passes)
    out = image.detach().clone()
    for p in range(passes):
        offset = (0, 0) if p == 0 else tuple(int(v) for v in torch.randint(0, tile, (2,), generator=generator))
        sums: dict[str, float] = {}
        boxes = list(tile_boxes(h, w, tile, overlap, offset))  # type: ignore[arg-type]
        for box in boxes:
            t, left, b, r = box
            piece = out[..., t:b, left:r].clone()
            losses = step_tile(piece, content[..., t:b, left:r], per_pass)
            it, il, ib, ir = interior(box, h, w, overlap // 2)
            out[..., it:ib, il:ir] = piece[..., it - t:ib - t, il - left:ir - left]
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + v / len(boxes)
        if on_pass is not None and on_pass(p, sums):
            break
    return out


def _ramp(n: int, overlap: int, at_start: bool, at_end: bool) -> torch.Tensor:
    w = torch.ones(n)
    ramp = torch.linspace(0, 1, overlap + 2)[1:-1]
    if not at_start and overlap:
        w[:overlap] = ramp[: min(overlap, n)]
    if not at_end and overlap:
        w[-overlap:] = torch.minimum(w[-overlap:], ramp.flip(0)[-min(overlap, n):])
    return w


def forward_tiled(fn: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor, *, tile: int = DEFAULT_TILE,
                  overlap: int = DEFAULT_OVERLAP) -> torch.Tensor:
    """Apply a fully convolutional network tile by tile with linear cross-fades over the overlaps,
    so any image size runs in the memory of one tile. ``fn`` maps (1,3,h,w) to (1,3,h,w)."""
    h, w = image.shape[-2:]
    if h <= tile and w <= tile:
        return fn(image)
    out = torch.zeros_like(image, dtype=torch.float32)
    weight = torch.zeros((1, 1, h, w))
    for t, left, b, r in tile_boxes(h, w, tile, overlap, (0, 0)):
        piece = fn(image[..., t:b, left:r]).float().cpu()
        wy = _ramp(b - t, overlap, t == 0, b == h)
        wx = _ramp(r - left, overlap, left == 0, r == w)
        mask = (wy[:, None] * wx[None, :])[None, None]
        out[..., t:b, left:r] += piece * mask
        weight[..., t:b, left:r] += mask
    return out / weight.clamp_min(1e-8)
