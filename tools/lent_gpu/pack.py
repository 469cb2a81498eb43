"""Pack what an AdaIN training run on a lent GPU needs into ``.dev/`` (git-ignored; it travels with
``carry``): one slice of the corpus's 'train' rows re-encoded at a lower JPEG quality, 16 'val' pairs,
the offline VGG-16 in fp16 up to conv5_1 (the recipe reads nothing deeper) and the decoder to start from.

A call may carry at most 64 MiB with the working tree, so one call sees one slice (``--part``); the
next call carries the next slice (slices never overlap for the same ``--photos``/``--paintings``; the
photos run out after part 2 at 900 a slice: ``--photo-part`` then starts them over).
The images never enter the repository.

    python tools/lent_gpu/pack.py --part 0 --init src/impasto/assets/models/adain.safetensors
"""

from __future__ import annotations

import argparse
import random
import shutil
from pathlib import Path

from PIL import Image
from safetensors.torch import load_file, save_file

from impasto.features.weights import Weights, cache_dir
from impasto.train.data import read_split

ROOT = Path(__file__).resolve().parents[2]
CONV5_1 = 24  # features.24 in torchvision's numbering


def pack_corpus(corpus: Path, dest: Path, parts: tuple[int, int], photos: int, paintings: int, quality: int) -> int:
    table = read_split(corpus / "split.tsv")  # (folder, file) -> split
    rng = random.Random(1234)  # the same shuffle every time, so parts never overlap
    out = ["file\tfolder\tsplit"]
    for folder, n, part in (("photos", photos, parts[0]), ("paintings", paintings, parts[1])):
        train = sorted(f for (d, f), s in table.items() if d == folder and s == "train")
        rng.shuffle(train)
        chosen = train[part * n:(part + 1) * n]
        if not chosen:
            raise SystemExit(f"pack: part {part} holds no {folder} ({len(train)} 'train' rows, {n} a part)")
        if len(chosen) < n:
            print(f"pack: part {part} holds only {len(chosen)} {folder}")
        val = sorted(f for (d, f), s in table.items() if d == folder and s == "val")[:16]
        (dest / folder).mkdir(parents=True, exist_ok=True)
        for name, split, q in [(f, "train", quality) for f in chosen] + [(f, "val", 95) for f in val]:
            stem = Path(name).stem + ".jpg"
            if (dest / folder / stem).exists():
                raise SystemExit(f"pack: two corpus files would both be {folder}/{stem}")
            with Image.open(corpus / folder / name) as img:
                img.convert("RGB").save(dest / folder / stem, "JPEG", quality=q)
            out.append(f"{stem}\t{folder}\t{split}")
    (dest / "split.tsv").write_text("\n".join(out) + "\n")
    return len(out) - 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    ap.add_argument("--part", type=int, default=0, help="which slice of the shuffled 'train' rows (0)")
    ap.add_argument("--photo-part", type=int, default=None,
                    help="another slice for the photos (default: --part); there are 2.3x more paintings")
    ap.add_argument("--photos", type=int, default=900)
    ap.add_argument("--paintings", type=int, default=1200)
    ap.add_argument("--quality", type=int, default=75, help="JPEG quality of the training images (75)")
    ap.add_argument("--init", type=Path, required=True, help="the AdaIN decoder to fine-tune")
    ap.add_argument("--dest", type=Path, default=ROOT / ".dev")
    args = ap.parse_args()
    if (args.dest / "corpus").exists():
        shutil.rmtree(args.dest / "corpus")
    parts = (args.part if args.photo_part is None else args.photo_part, args.part)
    n = pack_corpus(args.corpus, args.dest / "corpus", parts, args.photos, args.paintings, args.quality)
    Weights.VGG16_KERAS_OFFLINE.value.state_dict()  # converts it into the cache once
    state = load_file(str(cache_dir() / "vgg16-keras-offline.safetensors"))
    save_file({k: v.half() for k, v in state.items() if int(k.split(".")[1]) <= CONV5_1},
              str(args.dest / "vgg16_to_conv5_1.fp16.safetensors"))
    shutil.copy(args.init, args.dest / "init.safetensors")
    size = sum(p.stat().st_size for p in args.dest.rglob("*") if p.is_file())
    print(f"packed {n} images and the VGG into {args.dest}: {size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
