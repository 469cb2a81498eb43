"""How Monet-like are a CycleGAN's translations of held-out photos, and how much of the photo survives?

Data: the corpus' held-out rows (``split.tsv`` split ``test`` by default), never seen in training:
landscape photos (``vg2p_``, ``kphoto_``) and Monet paintings (``kmonet_``). Every image is first brought
to the model's training size (long side), so translated photos and paintings are compared at one scale.

* KID (pooled VGG relu5_3, features at twice that size) of translated photos vs the held-out paintings,
  with its jackknife standard error, next to the untranslated photos vs the same paintings (baseline:
  lower than the baseline means the translation moved the photos towards the paintings).
* Domain probe: the fraction of translated photos that a linear probe (``impasto.probe``, fitted on
  ``train`` photos, the target paintings and other painters' work (``--other-paintings``), same size) calls
  the target painter, next to the untranslated photos' fraction; its calls on the held-out photos and
  paintings say whether it can tell them apart at all.
* Structure kept: luminance SSIM of translation vs its photo (1 = unchanged; a style transfer lowers it
  somewhat, a collapse lowers it a lot).
* Round trip: mean absolute error and SSIM of photo -> painting -> photo vs the photo.
* A contact sheet: photo | translated | round trip, one photo per row.

    python benchmarks/cyclegan_paintings.py --model build/cyclegan_paintings_run [--quick]

``--model`` takes a model file, a run folder (its model, else its newest checkpoint: a run can be scored
while it trains) or a checkpoint ``.pt``. Writes report.json and sheet.png under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
from corpus_eval import corpus_files, features, fit_probe, kid, mean_se, probe_row, spread

from impasto.io import load_image, resize_long, save_image
from impasto.metrics import ssim
from impasto.models import files
from impasto.models.cyclegan import KIND
from impasto.sheet import grid
from impasto.train import checkpoint as ckpt
from impasto.train.average import AVERAGE, LIVE, in_use
from impasto.translate import translate


def model_for(path: Path, work: Path, live: bool = False) -> Path:
    """A CycleGAN model file from a model file, a run folder or a checkpoint ``.pt`` (exported to ``work``;
    its generators' average when it keeps one, unless ``live``: then the generators the optimizer trained)."""
    if path.is_dir():
        if (path / "model.safetensors").is_file() and not live:
            return path / "model.safetensors"
        newest = ckpt.latest(path / "checkpoints")
        if newest is None:
            raise SystemExit(f"{path}: holds neither model.safetensors nor checkpoints/")
        path = newest
    if path.suffix != ".pt":
        return path
    state = ckpt.load(path)
    models = state["models"]
    g = models[LIVE] if live else in_use(models)  # by default the average, as the run's file
    blocks = {k.split(".")[2] for k in g if k.startswith("g_ab.") and ".body." in k}
    meta = {"ngf": int(g["g_ab.net.1.weight"].shape[0]), "n_blocks": len(blocks), "steps": int(state["step"]),
            "names": ["A", "B"], "from_checkpoint": str(path), "average": AVERAGE in models and not live,
            "upsample": state.get("extra", {}).get("recipe", {}).get("upsample", "nearest")}
    return files.save(work / f"{path.stem}.safetensors", KIND, g, meta, dtype=torch.float32)


def _score(photos: list[torch.Tensor], model: Path, direction: str, shifts: int) -> tuple[list[torch.Tensor],
                                                                                         list[Any]]:
    """Translations and per-photo rows (structure kept, round-trip error)."""
    back_dir = "b2a" if direction == "a2b" else "a2b"
    out, rows = [], []
    for x in photos:
        y, _ = translate(x, model, direction=direction, precision="fp32", shifts=shifts)
        back, _ = translate(y, model, direction=back_dir, precision="fp32", shifts=shifts)
        out.append(y)
        rows.append({"ssim_translated": ssim(y, x), "ssim_round_trip": ssim(back, x),
                     "l1_round_trip": float((back - x).abs().mean()), "back": back})
    return out, rows


def _probe(args: argparse.Namespace, size: int, sets: dict[str, torch.Tensor]) -> dict[str, Any]:
    """The domain probe fitted on ``train`` rows, and the fraction of each set (its ``features`` rows at
    twice ``size``) it calls the target painter."""
    kinds = {"photos": ("photos", args.photos), "target": ("paintings", args.paintings),
             "others": ("paintings", args.other_paintings)}
    limit = 6 if args.quick else args.probe_rows
    train = {}
    for name, (folder, prefixes) in kinds.items():
        paths = corpus_files(args.corpus, folder, prefixes, "train")
        train[name] = [resize_long(load_image(p), size) for p in spread(paths, limit)]
    feature_size = 2 * size
    probe = fit_probe(train, feature_size)
    held_others = corpus_files(args.corpus, "paintings", args.other_paintings, args.splits)
    others = [resize_long(load_image(p), size) for p in spread(held_others, limit)]
    sets = {**sets, "held_out_other_paintings": features(others, feature_size)}
    calls = {name: probe_row(probe, f) for name, f in sets.items()}
    return {"fitted_on": {k: len(v) for k, v in train.items()}, **calls}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, required=True, help="model file, run folder or checkpoint .pt")
    ap.add_argument("--corpus", type=Path, default=Path("../shared/corpus"))
    ap.add_argument("--photos", default="vg2p_,kphoto_", help="photo name prefixes (vg2p_,kphoto_)")
    ap.add_argument("--paintings", default="kmonet_", help="painting name prefixes (kmonet_)")
    ap.add_argument("--splits", default="test", help="held-out split(s), comma list (test)")
    ap.add_argument("--direction", choices=["a2b", "b2a"], default="a2b", help="photo -> painting direction (a2b)")
    ap.add_argument("--shifts", type=int, default=4, help="translate's --shifts (4, its default; 1: one pass)")
    ap.add_argument("--size", type=int, default=0, help="long side of every image (0: the model's training size)")
    ap.add_argument("--rows", type=int, default=12, help="photos on the contact sheet (12)")
    ap.add_argument("--other-paintings", default="wikiart", help="the probe's third kind: other painters (wikiart)")
    ap.add_argument("--probe-rows", type=int, default=300,
                    help="training images of each kind the domain probe is fitted on (300)")
    ap.add_argument("--live", action="store_true",
                    help="from a run folder or checkpoint, score the trained generators, not their --ema average")
    ap.add_argument("--out", type=Path, default=Path("build/cyclegan_paintings"))
    ap.add_argument("--quick", action="store_true", help="smoke check: 6 photos, 6 paintings, 3 sheet rows")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    model = model_for(args.model, args.out, args.live)
    _, meta = files.read_meta(model)
    size = args.size or int(meta.get("size", 128))
    limit = 6 if args.quick else None
    photo_paths = corpus_files(args.corpus, "photos", args.photos, args.splits, limit)
    painting_paths = corpus_files(args.corpus, "paintings", args.paintings, args.splits, limit)
    photos = [resize_long(load_image(p), size) for p in photo_paths]
    paintings = [resize_long(load_image(p), size) for p in painting_paths]
    translated, rows = _score(photos, model, args.direction, args.shifts)
    feature_size = 2 * size
    rows_of = {"translated": features(translated, feature_size), "photos_baseline": features(photos, feature_size),
               "held_out_paintings": features(paintings, feature_size)}
    report = {
        "model": str(model), "live": args.live, "steps": meta.get("steps"), "names": meta.get("names"),
        "direction": args.direction,
        "splits": args.splits, "size": size, "feature_size": feature_size, "shifts": args.shifts, "quick": args.quick,
        "photos": len(photos), "paintings": len(paintings),
        "kid_translated_vs_paintings": kid(rows_of["translated"], rows_of["held_out_paintings"]),
        "kid_photos_vs_paintings_baseline": kid(rows_of["photos_baseline"], rows_of["held_out_paintings"]),
        **{k: mean_se([r[k] for r in rows]) for k in ("ssim_translated", "ssim_round_trip", "l1_round_trip")},
    }
    report["probe"] = _probe(args, size, rows_of)
    report["kid_baseline_over_translated"] = (report["kid_photos_vs_paintings_baseline"]["kid"]
                                              / max(report["kid_translated_vs_paintings"]["kid"], 1e-12))
    report["seconds"] = round(time.perf_counter() - t0, 1)
    n = min(3 if args.quick else args.rows, len(photos))
    cells = [c for i in range(n) for c in (photos[i], translated[i], rows[i]["back"])]
    labels = [t for i in range(n) for t in (photo_paths[i].stem[:20], "translated", "round trip")]
    save_image(grid(cells, columns=3, cell=max(160, size), labels=labels), args.out / "sheet.png")
    (args.out / "report.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
