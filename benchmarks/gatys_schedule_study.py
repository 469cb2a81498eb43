"""Where the default Gatys run's time goes and where its look stops changing (prints JSON): for held-out
corpus pairs, one default run each, snapshots of the final scale every ``--every`` iterations with the
seconds elapsed, each scored as the quality benchmark scores (256 px: VGG content distance to the photo,
Gram style distance to the painting) and compared with the full run's final image.

    python benchmarks/gatys_schedule_study.py [--pairs 16] [--split val] [--size 512] [--every 10]

The answer it gives: the fewest final-scale iterations whose content and style distances are within 3%
of the full default's on average and 10% on every pair, and the seconds that would save.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np


def held_out_pairs(corpus: Path, n: int, seed: int, split: str) -> list[tuple[Path, Path]]:
    rows = [line.split("\t") for line in (corpus / "split.tsv").read_text().splitlines()[1:]]
    photos = sorted(corpus / "photos" / r[0] for r in rows if r[1] == "photos" and r[2].strip() == split)
    paintings = sorted(corpus / "paintings" / r[0] for r in rows if r[1] == "paintings" and r[2].strip() == split)
    rng = random.Random(seed)
    return list(zip(rng.sample(photos, n), rng.sample(paintings, n), strict=True))


def one_pair(photo: Path, painting: Path, size: int, every: int, knobs: dict[str, Any],
             save: tuple[Path, list[int]] | None = None, iterations: int | None = None) -> dict[str, Any]:
    from impasto import optimize
    from impasto.io import load_image
    from impasto.options import make_options

    content, style = load_image(photo), load_image(painting)
    snaps: list[tuple[int, float, Any]] = []
    first_final: list[float] = []
    totals: list[float] = []  # the final scale's loss at every iteration, to replay stopping rules offline

    def callback(p: Any) -> None:
        if p.scale == size:
            totals.append(p.losses["total"])
        if p.scale == size and p.preview is not None:
            if not first_final:
                first_final.append(p.elapsed)
            snaps.append((len(totals), p.elapsed, p.preview.clone()))  # iterations done at this scale

    t0 = time.perf_counter()
    given = {"size": size, **({"iterations": iterations} if iterations else {})}
    image, result = optimize.stylize(content, style, make_options("gatys", given), callback=callback,
                                     preview_every=every, **knobs)
    seconds = time.perf_counter() - t0
    if save is not None:  # the images a contact sheet compares: the full run's and chosen snapshots
        from impasto.io import save_image

        folder, keep = save
        stem = f"{photo.stem}__{painting.stem}"
        save_image(image, folder / f"{stem}__final.png")
        for k, _, x in snaps:
            if k in keep:
                save_image(x, folder / f"{stem}__{k}.png")
    full = max(image.shape[-2:])
    scores = [(k, t, *_score(x, content, style, 256), *_score(x, content, style, full)) for k, t, x in snaps]
    return {"photo": photo.name, "painting": painting.name, "seconds": seconds,
            "schedule_run": result.schedule_run, "final": _score(image, content, style, 256),
            "final_full": _score(image, content, style, full), "final_totals": totals,
            "snapshots": [{"iterations": k, "seconds": t, "content": c, "style": s, "content_full": cf,
                           "style_full": sf} for k, t, c, s, cf, sf in scores]}


def _score(image: Any, content: Any, style: Any, size: int) -> tuple[float, float]:
    """(content, style) distances at ``size`` px: 256 as the quality benchmark scores, and the output's own
    size, where the finest scale's detail shows."""
    from impasto.io import resize_long
    from impasto.metrics import content_loss, style_loss

    x, c, s = (resize_long(t, size) for t in (image, content, style))
    return content_loss(x, c), style_loss(x, s)


def summarize(runs: list[dict[str, Any]], suffix: str = "") -> dict[str, Any]:
    """Per snapshot: mean and worst relative change of each distance against the final image (``suffix``
    "_full": scored at the output's size)."""
    out = {}
    ks = sorted({s["iterations"] for r in runs for s in r["snapshots"]})
    for k in ks:
        rel_c, rel_s, secs = [], [], []
        for r in runs:
            snap = next((s for s in r["snapshots"] if s["iterations"] == k), None)
            if snap is None:
                continue
            final = r["final" + suffix]
            rel_c.append(snap["content" + suffix] / final[0] - 1)
            rel_s.append(snap["style" + suffix] / final[1] - 1)
            secs.append(snap["seconds"])
        out[str(k)] = {"content_mean": float(np.mean(rel_c)), "content_worst": float(np.max(rel_c)),
                       "style_mean": float(np.mean(rel_s)), "style_worst": float(np.max(rel_s)),
                       "seconds_mean": float(np.mean(secs)), "pairs": len(secs)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=16)
    ap.add_argument("--split", default="val")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--corpus", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "corpus")
    ap.add_argument("--out", type=Path, help="also write the per-pair JSON lines here as they finish")
    ap.add_argument("--knob", action="append", default=[], metavar="NAME=VALUE",
                    help="an engine knob for the run (e.g. coarse_plateau=0.1); --reference gives the default's final")
    ap.add_argument("--reference", type=Path, help="JSON lines of a default run: compare against its finals")
    ap.add_argument("--first", type=int, default=None, help="run only the first N of the --pairs pairs")
    ap.add_argument("--iterations", type=int, default=None,
                    help="first-scale iterations (default: the engine's; 200 was the default before #23)")
    ap.add_argument("--save-images", type=Path, default=None, help="write each pair's final image here, and")
    ap.add_argument("--save-at", default="", help="the snapshots after these final-scale iterations (e.g. 71)")
    args = ap.parse_args()
    from impasto.device import keep_freed_memory

    keep_freed_memory()
    knobs = {k: json.loads(v) for k, v in (kv.split("=", 1) for kv in args.knob)}  # numbers and true/false
    refs = {}
    if args.reference:
        refs = {(r["photo"], r["painting"]): r for r in map(json.loads, args.reference.read_text().splitlines())}
    runs = []
    done = {}  # an interrupted study continues: pairs already in --out are read back, not run again
    if args.out and args.out.exists():
        done = {(r["photo"], r["painting"]): r for r in map(json.loads, args.out.read_text().splitlines())}
    save = None
    if args.save_images:
        args.save_images.mkdir(parents=True, exist_ok=True)
        save = (args.save_images, [int(k) for k in args.save_at.split(",") if k])
    for photo, painting in held_out_pairs(args.corpus, args.pairs, args.seed, args.split)[:args.first]:
        if (photo.name, painting.name) in done:
            runs.append(done[(photo.name, painting.name)])
            continue
        runs.append(one_pair(photo, painting, args.size, args.every, knobs, save, args.iterations))
        ref = refs.get((photo.name, painting.name))
        if ref is not None:  # judged against the default's own final image
            runs[-1].update(final=ref["final"], final_full=ref["final_full"], reference_seconds=ref["seconds"])
        if args.out:
            with args.out.open("a") as f:
                f.write(json.dumps(runs[-1]) + "\n")
    print(json.dumps({"benchmark": "gatys_schedule_study", "pairs": len(runs), "split": args.split, "knobs": knobs,
                      "iterations": args.iterations,
                      "size": args.size, "seconds_mean": float(np.mean([r["seconds"] for r in runs])),
                      "by_final_iterations_256px": summarize(runs),
                      "by_final_iterations_full_size": summarize(runs, "_full")}, indent=1))


if __name__ == "__main__":
    main()
