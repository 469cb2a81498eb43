"""Regenerate docs/defaults_sheet.jpg: default settings, 512 px, on sample pairs (content x style).

    python docs/make_defaults_sheet.py [--size 512]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from impasto.io import load_image
from impasto.optimize import stylize
from impasto.sheet import grid

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "images"
PAIRS = [("golden_gate", "udnie"), ("chicago", "woman_with_hat_matisse"), ("sailboat", "en_campo_gris"),
         ("amber", "mosaic"), ("flowers", "contrast_of_forms"), ("chicago", "the_resevoir_at_poitiers")]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "defaults_sheet.jpg")
    args = ap.parse_args()
    cells, labels, runs = [], [], []
    for content, style in PAIRS:
        c = load_image(SHARED / "content" / f"{content}.jpg")
        s = load_image(SHARED / "style" / f"{style}.jpg")
        out, result = stylize(c, s, size=args.size)
        cells += [c, s, out]
        labels += [content, style, f"{result.seconds:.0f}s {result.precision}"]
        runs.append({"content": content, "style": style, "seconds": result.seconds, "losses": result.losses})
        print(json.dumps(runs[-1]), flush=True)
    grid(cells, columns=6, cell=320, labels=labels).save(args.out, quality=88)


if __name__ == "__main__":
    main()
