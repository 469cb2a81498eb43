"""Tiled optimization: full coverage, interiors only, and a tiled run equivalent in spirit to a whole one."""

from __future__ import annotations

import torch

from impasto.optimize import stylize
from impasto.tiling import TilePlan, interior, optimize_tiled, tile_boxes


def test_tiles_cover_every_pixel_for_any_offset():
    for offset in [(0, 0), (37, 5), (100, 99)]:
        seen = torch.zeros(300, 410, dtype=torch.int32)
        for box in tile_boxes(300, 410, 128, 32, offset):
            t, left, b, r = interior(box, 300, 410, 16)
            seen[t:b, left:r] += 1
        assert seen.min() >= 1


def test_only_tile_interiors_are_written_back():
    """Each tile paints itself with its own number: a pixel must end with the number of the last tile whose
    interior covers it, which fails if a tile's overlapping border were written over a neighbour's interior."""
    image = torch.zeros(1, 3, 200, 200)
    painted = []

    def paint(piece, content_tile, n):
        painted.append(len(painted) + 1)
        piece.fill_(float(painted[-1]))
        return {"total": 0.0}

    plan = TilePlan(tile=128, overlap=32, passes=1)
    out = optimize_tiled(image, image, paint, iterations=1, plan=plan)
    boxes = list(tile_boxes(200, 200, 128, 32, (0, 0)))
    assert len(boxes) == len(painted) > 1
    expected = torch.zeros(200, 200)  # the last tile whose interior covers a pixel owns it
    for number, box in zip(painted, boxes, strict=True):
        t, left, b, r = interior(box, 200, 200, 16)
        expected[t:b, left:r] = number
    assert expected.min() > 0 and torch.equal(out[0, 0], expected)


def test_tiled_scale_runs_and_reports_passes(small_pair):
    content, style = small_pair
    stages = []
    out, result = stylize(content, style, size=96, iterations=4, precision="fp32", multiscale=False,
                          tile_above=48 * 48, tile_size=64, callback=lambda p: stages.append(p.stage))
    assert out.shape[-1] == 96 or out.shape[-2] == 96
    assert any("tiled pass 2/2" in s for s in stages)
    assert torch.isfinite(out).all() and result.losses["style"] > 0


def test_tiles_after_the_first_start_from_the_carried_curvature(small_pair, monkeypatch):
    """Each tile is a fresh L-BFGS run of a few iterations; without the carried curvature its first
    iteration would be a near-zero probe, a large share of a tile's budget."""
    from impasto import optimize

    content, style = small_pair
    scales = []
    real = optimize._make_optimizer

    def spy(name, image, initial_scale=None):
        scales.append((image.shape[-2] * image.shape[-1], initial_scale))
        return real(name, image, initial_scale)

    monkeypatch.setattr(optimize, "_make_optimizer", spy)
    stylize(content, style, size=96, iterations=4, precision="fp32", multiscale=False, tile_above=48 * 48,
            tile_size=64)
    assert len(scales) > 2 and scales[0][1] is None and all(s is not None for _, s in scales[1:])
