"""Contact sheet for #23's look check: today's default | a shorter final scale, side by side at full size.

Reads the images ``gatys_schedule_study.py --save-images DIR --save-at K`` wrote (each pair's final
image and its snapshot after K final-scale iterations) and writes one sheet per K, the columns shuffled
per row by a fixed seed with the key printed as JSON, so a person can judge blind which is which.

    python benchmarks/gatys_look_sheet.py build/study16_img --at 71 --out build/look_71.png
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", type=Path)
    ap.add_argument("--at", type=int, required=True, help="the snapshot's final-scale iterations")
    ap.add_argument("--rows", type=int, default=6)
    ap.add_argument("--cell", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    from impasto.io import load_image, save_image
    from impasto.sheet import grid

    finals = sorted(args.folder.glob("*__final.png"))[:args.rows]
    rng = random.Random(args.seed)
    cells, key = [], []
    for final in finals:
        short = final.with_name(final.name.replace("__final.png", f"__{args.at}.png"))
        pair = [("default", final), (f"{args.at} iterations", short)]
        rng.shuffle(pair)
        cells += [load_image(p) for _, p in pair]
        key.append({"pair": final.name.removesuffix("__final.png"), "left": pair[0][0], "right": pair[1][0]})
    save_image(grid(cells, columns=2, cell=args.cell), args.out)
    print(json.dumps({"sheet": str(args.out), "key": key}, indent=1))


if __name__ == "__main__":
    main()
