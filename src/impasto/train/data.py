"""Training data: image folders with bad files skipped and counted, deterministic augmentation.

Random crops and flips draw from a generator seeded by (seed, epoch, index), so a sample is the same
whichever process loads it and whether or not the run was resumed: that is what makes resume exact
and single- vs multi-process runs comparable.
"""

from __future__ import annotations

import fnmatch
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset

from impasto.errors import InputError
from impasto.io import IMAGE_SUFFIXES, load_image, resize


def scan_images(folder: str | Path, *, recursive: bool = True, name: str = "",
                keep: Callable[[Path], bool] | None = None) -> tuple[list[Path], int]:
    """Image files under ``folder`` whose headers parse, and how many others were skipped. ``keep``
    chooses files by path before any is opened (a split: held-out files are never read)."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"{name or root}: {root} is not a directory")
    candidates = sorted(p for p in (root.rglob("*") if recursive else root.iterdir())
                        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and (keep is None or keep(p)))
    good, bad = [], 0
    for p in candidates:
        try:
            with Image.open(p) as img:
                img.verify()
            good.append(p)
        except Exception:  # any decoder failure means skip, counted and reported
            bad += 1
    if bad:
        print(f"impasto: skipped {bad} unreadable file(s) in {root}", file=sys.stderr)
    if not good:
        raise InputError(f"{name or root}: no readable images in {root}")
    return good, bad


def read_split(tsv: str | Path) -> dict[tuple[str, str], str]:
    """A split file (columns file, folder, split; e.g. ../shared/corpus/split.tsv): (folder, file) -> split."""
    path = Path(tsv)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"--split-file {path}: cannot read it ({exc.__class__.__name__})") from exc
    header = lines[0].split("\t") if lines else []
    if header[:3] != ["file", "folder", "split"]:
        raise InputError(f"--split-file {path}: expected the columns file, folder, split")
    table = {}
    for line in lines[1:]:
        parts = line.split("\t")
        if len(parts) >= 3:
            table[(parts[1], parts[0])] = parts[2]
    return table


def _names(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """'a_,b_' or ['a_', 'b_'] -> ('a_', 'b_'): a flag's comma list, empty entries dropped."""
    parts = text.split(",") if isinstance(text, str) else list(text or ())
    return tuple(p.strip() for p in parts if p.strip())


@dataclass(frozen=True)
class Selection:
    """Which files of a folder a run reads, decided by name before any file is opened: one split's rows
    of a split file (held-out files are never read), names starting with one of ``prefixes`` and
    matching one of ``globs`` (one domain of a mixed corpus), at most ``limit`` of them (a small subset).
    The one home of these rules: every trainer and benchmark that picks corpus files uses it."""

    table: Mapping[tuple[str, str], str] | None = None
    prefixes: tuple[str, ...] = ()
    globs: tuple[str, ...] = ()
    limit: int | None = None
    source: str = ""  # the split file's name, for the record

    def keep(self, split: str | None = None) -> Callable[[Path], bool] | None:
        """A predicate on paths (the split file's key is (parent folder name, file name)); None keeps all."""
        rows = self.table if split is not None else None
        if rows is None and not self.prefixes and not self.globs:
            return None

        def keep(p: Path) -> bool:
            return ((rows is None or rows.get((p.parent.name, p.name)) == split)
                    and (not self.prefixes or p.name.startswith(self.prefixes))
                    and (not self.globs or any(fnmatch.fnmatchcase(p.name, g) for g in self.globs)))

        return keep

    def describe(self, split: str | None = None) -> str:
        """E.g. "'train' rows of split.tsv, names kmonet_*": what was read, for messages and records."""
        parts = [f"'{split}' rows of {self.source or 'the split file'}"] if split and self.table is not None else []
        if self.prefixes:
            parts.append("names " + ", ".join(f"{p}*" for p in self.prefixes))
        if self.globs:
            parts.append("matching " + ", ".join(self.globs))
        if self.limit:
            parts.append(f"at most {self.limit}")
        return "; ".join(parts)


def selection(split_file: str | Path | None = None, prefixes: str | Sequence[str] | None = None,
              globs: str | Sequence[str] | None = None, limit: int | None = None) -> Selection:
    """A :class:`Selection` from command-line values (comma lists for prefixes and globs)."""
    if limit is not None and limit < 1:
        raise InputError(f"--max-images must be at least 1, got {limit}")
    table = read_split(split_file) if split_file is not None else None
    return Selection(table, _names(prefixes), _names(globs), limit, Path(split_file).name if split_file else "")


def select_images(folder: str | Path, sel: Selection, split: str | None = None, *, name: str = "",
                  seed: int = 0, required: bool = True) -> tuple[list[Path], int]:
    """(files of ``folder`` that ``sel`` keeps for ``split``, unreadable ones skipped); ``limit`` takes a
    seeded random subset (the same files for the same seed). Not ``required``: no match gives []."""
    what = sel.describe(split)
    label = f"{name} ({what})" if what else name
    try:
        paths, skipped = scan_images(folder, name=label, keep=sel.keep(split))
    except InputError:
        if required or not Path(folder).is_dir():
            raise
        return [], 0
    if sel.limit is not None and len(paths) > sel.limit:
        order = torch.randperm(len(paths), generator=torch.Generator().manual_seed(seed)).tolist()
        paths = [paths[i] for i in sorted(order[: sel.limit])]
    return paths, skipped


def sample_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 1_000_003 + index)


def random_crop(image: torch.Tensor, size: int, gen: torch.Generator, *, scale: float = 1.15,
                flip: bool = True) -> torch.Tensor:
    """Resize so the short side is ``size * scale`` (at least ``size``), take a random square crop."""
    h, w = image.shape[-2:]
    short = max(size, round(size * scale))
    ratio = short / min(h, w)
    image = resize(image, (max(size, round(h * ratio)), max(size, round(w * ratio))))
    h, w = image.shape[-2:]
    top = int(torch.randint(0, h - size + 1, (1,), generator=gen))
    left = int(torch.randint(0, w - size + 1, (1,), generator=gen))
    out = image[..., top:top + size, left:left + size]
    if flip and bool(torch.rand((), generator=gen) < 0.5):
        out = out.flip(-1)
    return out


class ImageFolder(Dataset):
    """Square crops of ``size`` from a folder of images (any formats, unreadable files skipped)."""

    def __init__(self, folder: str | Path | Sequence[Path], size: int, *, seed: int = 0, augment: bool = True,
                 name: str = "") -> None:
        if isinstance(folder, str | Path):
            self.paths, self.skipped = scan_images(folder, name=name)
        else:
            self.paths, self.skipped = list(folder), 0
        self.size, self.seed, self.augment = size, seed, augment
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        image = load_image(self.paths[index])
        gen = sample_generator(self.seed, self.epoch if self.augment else 0, index)
        if self.augment:
            return random_crop(image, self.size, gen)[0]
        return random_crop(image, self.size, sample_generator(self.seed, 0, index), scale=1.0, flip=False)[0]


class TensorImages(Dataset):
    """In-memory images (N,3,H,W) in [0,1], e.g. scikit-image's LFW faces, with optional flips."""

    def __init__(self, images: torch.Tensor, *, seed: int = 0, augment: bool = True) -> None:
        self.images, self.seed, self.augment, self.epoch = images, seed, augment, 0

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> torch.Tensor:
        img = self.images[index]
        if self.augment and bool(torch.rand((), generator=sample_generator(self.seed, self.epoch, index)) < 0.5):
            img = img.flip(-1)
        return img


def split(paths: Sequence[Path], val_fraction: float, seed: int = 0) -> tuple[list[Path], list[Path]]:
    """Deterministic train/validation split of a file list."""
    if not 0 <= val_fraction < 1:
        raise InputError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    order = torch.randperm(len(paths), generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = round(len(paths) * val_fraction)
    if val_fraction > 0 and n_val == 0 and len(paths) > 1:
        n_val = 1
    val = [paths[i] for i in sorted(order[:n_val])]
    train = [paths[i] for i in sorted(order[n_val:])]
    return train, val


#: photo files inside scikit-image's wheel (read from disk: no download): the offline training set
SKIMAGE_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
                  "motorcycle_right.png", "hubble_deep_field.jpg", "camera.png", "grass.png", "gravel.png",
                  "brick.png", "moon.png", "coins.png", "ihc.png", "retina.jpg", "page.png")


def export_skimage_photos(dest: str | Path) -> list[Path]:
    """Copy scikit-image's bundled photos as RGB PNGs into ``dest`` (needs the 'train' extra)."""
    try:
        import skimage
    except ImportError as exc:
        raise InputError("scikit-image is needed for its bundled photos: pip install 'impasto[train]'") from exc
    from impasto.io import save_image

    src = Path(skimage.__file__).parent / "data"
    out = Path(dest)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in SKIMAGE_PHOTOS:
        target = out / (Path(name).stem + ".png")
        if (src / name).is_file() and not target.exists():
            save_image(load_image(src / name), target)
        if target.exists():
            written.append(target)
    return written
