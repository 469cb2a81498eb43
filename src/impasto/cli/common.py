"""Helpers shared by the subcommands: progress bars, JSON output, argument parsing."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from impasto.errors import InputError
from impasto.io import IMAGE_SUFFIXES


class ProgressBar:
    """A tqdm bar on stderr fed by an engine callback; silent with --quiet."""

    def __init__(self, quiet: bool, desc: str = "") -> None:
        self.quiet, self.desc, self.bar = quiet, desc, None

    def __call__(self, p: Any) -> None:
        if self.quiet:
            return None
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=p.total, desc=self.desc or p.stage, file=sys.stderr, dynamic_ncols=True,
                            leave=False)
        if p.total != self.bar.total:  # a coarse scale that settled early shortens the run
            self.bar.total = p.total
        self.bar.set_description(self.desc or p.stage, refresh=False)
        self.bar.set_postfix({k: f"{v:.4g}" for k, v in p.losses.items()}, refresh=False)
        self.bar.update(p.step - self.bar.n)
        return None

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def add_run_options(p: argparse.ArgumentParser) -> None:
    """--device, --precision, --json and --quiet, the same on every command that runs a network."""
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto")
    p.add_argument("--json", action="store_true", help="print one JSON object describing the run")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")


def print_json(obj: dict[str, Any]) -> None:
    print(json.dumps(obj, indent=1, default=str))


def non_empty(text: str) -> str:
    """A flag's value as typed, refused when blank: ``--max-size ""`` is a slip (an unset shell variable),
    not a request for the default, which leaving the flag out already is. (The web form's empty fields
    do mean the default; they do not come through here.)"""
    if not text.strip():
        raise argparse.ArgumentTypeError("needs a value (leave the flag out for its default)")
    return text


def path_arg(text: str) -> Path:
    """A path flag's value, refused when blank: ``Path("")`` is the current folder, where a slip such as
    ``--out-dir ""`` would otherwise write."""
    return Path(non_empty(text))


def float_list(text: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from exc
    if not values or any(not math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated finite numbers, got {text!r}")
    return values


def layer_weights(text: str) -> dict[str, float]:
    """'relu1_1=2,relu5_1=0.5' -> {'relu1_1': 2.0, 'relu5_1': 0.5}."""
    out: dict[str, float] = {}
    for part in (p for p in text.split(",") if p.strip()):
        name, sep, value = part.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"expected LAYER=NUMBER pairs, got {part!r}") from exc
        if not sep or not math.isfinite(out[name.strip()]) or out[name.strip()] < 0:
            raise argparse.ArgumentTypeError(f"expected LAYER=NUMBER pairs with numbers >= 0, got {part!r}")
    if not out:
        raise argparse.ArgumentTypeError("expected LAYER=NUMBER pairs")
    return out


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from exc
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def int_in(lo: int, hi: int) -> Callable[[str], int]:
    """An argparse type for whole numbers in [lo, hi]: a size or count past ``hi`` would exhaust memory
    (or, for a tile, a seed or an opset, is not a thing the code can use) long before it failed."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from exc
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"expected a number from {lo} to {hi}, got {value}")
        return value

    return parse


def nonneg_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from exc
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text}")
    return value


def fraction(text: str) -> float:
    value = nonneg_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text}")
    return value


def check_output_path(path: Path, inputs: Sequence[Path] = (), *, overwrite: bool | None = None, flag: str = "-o"
                      ) -> None:
    """Fail before any work if the output cannot be written, or if it would replace one of the
    ``inputs`` (the photo, a painting) without ``overwrite`` (None: the command has no --overwrite)."""
    if path.exists() and not overwrite and any(p.exists() and os.path.samefile(path, p) for p in inputs):
        hint = ", or --overwrite to replace it" if overwrite is not None and flag == "-o" else ""
        raise InputError(f"{path}: {flag} names an input file; give another path{hint}")
    if path.is_dir():
        raise InputError(f"{path}: is a directory; {flag} needs a file name such as {path / 'out.png'}")
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise InputError(f"{path}: unknown image suffix {path.suffix!r} (use .png, .jpg, .webp, .tif)")
    parent = path.parent if str(path.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise InputError(f"{path}: {parent} is a file, not a directory")
    if not parent.is_dir():
        raise InputError(f"{path}: output directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise InputError(f"{path}: output directory {parent} is not writable")


#: in a batch's output folder: the settings its outputs were made with, so a re-run resumes only its own batch,
#: and the sha256 of the input each output was made from, so a replaced input is made again
BATCH_RECORD = ".impasto_batch.json"


def _claim_folder(out_dir: Path, src: Path, settings: dict[str, Any], suffix: str) -> dict[str, Any]:
    """Make ``out_dir`` this batch's: refuse the input folder itself (each run would stylize the last
    run's outputs) and a folder whose outputs were made with other or unrecorded settings (a resume would
    keep them as if they were this batch's). Returns the record to keep up to date: ``{"settings": ...,
    "inputs": {output name: input sha256}}``."""
    from impasto.io import check_folder_target, make_folder

    check_folder_target(out_dir)
    if out_dir.resolve() == src.resolve():
        raise InputError(f"{out_dir}: is the input folder; give another output folder (-o)")
    record = out_dir / BATCH_RECORD
    wanted = json.loads(json.dumps(settings, default=str))
    if record.is_file():
        found, digests = _read_record(record)
        if found == wanted:
            return {"settings": wanted, "inputs": digests}
        if any(p.name != BATCH_RECORD for p in out_dir.iterdir()):  # an empty folder is anyone's
            raise InputError(f"{out_dir}: holds a batch made with other settings (see its {BATCH_RECORD}); give "
                             "another output folder, or delete that one to start again")
    elif out_dir.is_dir() and any(out_dir.glob(f"*{suffix}.png")):
        raise InputError(f"{out_dir}: holds *{suffix}.png outputs but no {BATCH_RECORD} saying how they were made "
                         "(an older impasto?); give another output folder, or delete them to start again")
    make_folder(out_dir)
    claimed: dict[str, Any] = {"settings": wanted, "inputs": {}}
    _write_record(out_dir, claimed)
    return claimed


def _read_record(record: Path) -> tuple[Any, dict[str, str]]:
    """A batch record's settings and input digests. The older layout (the settings alone) has no digests,
    so its outputs are made again: a replaced input cannot be told from the one they were made from."""
    try:
        found = json.loads(record.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None, {}
    if isinstance(found, dict) and set(found) == {"settings", "inputs"}:
        inputs = found["inputs"]
        ok = isinstance(inputs, dict) and all(isinstance(v, str) for v in inputs.values())
        return found["settings"], dict(inputs) if ok else {}
    return found, {}


def _write_record(out_dir: Path, record: dict[str, Any]) -> None:
    """Save the batch record atomically: a batch stopped mid-write leaves the last whole record."""
    from impasto.io import write_bytes_atomic

    write_bytes_atomic(out_dir / BATCH_RECORD, json.dumps(record, indent=1, sort_keys=True).encode())


def _output_names(inputs: Sequence[Path], suffix: str) -> dict[Path, str]:
    """Each input's output name: NAME{suffix}.png, or the whole file name (a.jpg{suffix}.png) for inputs
    whose stems collide (a.png and a.jpg would write one file and drop the other). Stems are compared
    case-folded so that the names also differ on a case-insensitive disk. Two inputs that still share a
    name are refused before any work. ``inputs`` sorted, so a resume finds the same names."""
    stems: dict[str, int] = {}
    for path in inputs:
        stems[path.stem.casefold()] = stems.get(path.stem.casefold(), 0) + 1
    names: dict[Path, str] = {}
    taken: dict[str, Path] = {}
    for path in inputs:
        name = f"{path.stem if stems[path.stem.casefold()] == 1 else path.name}{suffix}.png"
        if name.casefold() in taken:  # A.png and a.png are one file on a case-insensitive disk
            raise InputError(f"{taken[name.casefold()]} and {path}: would both be written as {name}; rename one "
                             "of them")
        names[path], taken[name.casefold()] = name, path
    return names


def run_folder(src: Path, out_dir: Path, suffix: str, process: Callable[[Any], Any], *, quiet: bool,
               as_json: bool, settings: dict[str, Any], after: Callable[[Path, Path, Any], None] | None = None
               ) -> int:
    """Every image in ``src`` through ``process`` into ``out_dir`` as NAME{suffix}.png (see
    :func:`_output_names`). An existing output is kept (a stopped batch resumes) when the folder's record
    says it was made with the same ``settings`` from an input with the same bytes; a file that fails,
    whatever the reason, is skipped and reported
    (a line on stderr, an entry in the JSON record) and the rest go on, so one bad photo neither stops
    the batch nor every re-run at the same place. Exit 2 at the end when any file failed; a full disk
    stops the batch (every later file would fail the same way). ``after(input, output, image)`` runs once
    an output is saved (the feedback store records the run there)."""
    from tqdm import tqdm

    from impasto.errors import WriteError
    from impasto.feedback.fingerprint import file_fingerprint
    from impasto.io import list_images, load_image, save_image

    inputs = list_images(src)
    if not inputs:
        raise InputError(f"{src}: no images in this folder")
    names = _output_names(inputs, suffix)
    record = _claim_folder(out_dir, src, settings, suffix)
    done, kept, failed = [], [], []
    for path in tqdm(inputs, desc="batch", file=sys.stderr, disable=quiet):
        target = out_dir / names[path]
        try:
            digest = file_fingerprint(path)  # before loading: an input changed meanwhile is made again next time
            if target.exists() and record["inputs"].get(target.name) == digest:
                kept.append(str(target))
                continue
            image = process(load_image(path))
            save_image(image, target)
            record["inputs"][target.name] = digest
            _write_record(out_dir, record)
            done.append(str(target))
            if after is not None:
                after(path, target, image)
        except Exception as exc:  # one photo's failure, even a bug, must not stop the others
            failed.append({"input": str(path), "error": _one_line(exc)})
            print(f"impasto: skipped {path}: {_one_line(exc)}", file=sys.stderr)
            if isinstance(exc, WriteError):
                break
    if as_json:
        print_json({"output_dir": str(out_dir), "written": done, "already_done": kept, "failed": failed})
    elif not quiet:
        print(f"{len(done)} written, {len(kept)} already done, {len(failed)} failed -> {out_dir}", file=sys.stderr)
    return 2 if failed else 0


def _one_line(exc: Exception) -> str:
    """An error as one short line: impasto's own message, or the type and first line of anything else."""
    from impasto.errors import ImpastoError

    if isinstance(exc, ImpastoError):
        return str(exc)
    first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    return f"unexpected {type(exc).__name__}: {first}" if first else f"unexpected {type(exc).__name__}"
