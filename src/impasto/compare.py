"""``impasto compare``: run several methods or settings on the same pairs and put them side by side.

A setting is ``NAME:key=value,key=value`` (keys are the method's options as :mod:`impasto.stylizer`
declares them, plus ``method``), e.g. ``gatys:method=gatys,size=256`` or
``fast:method=fast,style_index=1``; ``--method M`` is the setting ``M:method=M`` (the method's defaults).
Every run goes through the stylization contract, so a setting means what the same flags mean to
``impasto stylize``. Every run's time and the process's peak memory are recorded; every setting gets the
same metrics as ``impasto evaluate``.
"""

from __future__ import annotations

import dataclasses
import json
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from impasto import stylizer
from impasto.errors import ImpastoError, InputError
from impasto.io import check_folder_target, load_image, make_folder, save_image, write_bytes_atomic
from impasto.report import Pair, evaluate, write_report


def parse_setting(text: str) -> tuple[str, stylizer.Options]:
    """``NAME:method=M,key=value,...`` -> (NAME, the method's validated options)."""
    name, colon, rest = text.partition(":")
    if not colon or not name or not name.replace("-", "").replace("_", "").isalnum():
        raise InputError(f"--setting {text!r}: expected NAME:method=M,key=value,... with a plain NAME")
    given: dict[str, Any] = {}
    for part in filter(None, rest.split(",")):
        key, eq, value = part.partition("=")
        if not eq:
            raise InputError(f"--setting {text!r}: {part!r} is not key=value")
        key = key.strip().replace("-", "_")
        if key in given:  # the last one winning would hide a typo in the first
            raise InputError(f"--setting {name}: {key} is given twice")
        given[key] = value
    method = str(given.pop("method", "")).strip()
    if not method:  # a default method here would start a run nobody asked for
        raise InputError(f"--setting {text!r}: name the method (NAME:method=M,key=value,...)")
    try:
        return name, stylizer.make_options(method, given)
    except InputError as exc:
        raise InputError(f"--setting {name}: {exc}") from exc


#: told of every image compare writes: (the run's record, content, style, output path, image)
OnOutput = Callable[[dict[str, Any], Path, Path, Path, Any], None]


def run_compare(contents: list[Path], styles: list[Path], settings: list[str], out_dir: Path,
                eval_size: int = 512, on_output: OnOutput | None = None) -> dict[str, Any]:
    parsed = [parse_setting(s) for s in settings]
    if not parsed:
        raise InputError("give at least one --method or --setting")
    if len({n for n, _ in parsed}) != len(parsed):
        raise InputError("--setting names must be unique")
    check_folder_target(out_dir)
    for _, options in parsed:
        stylizer.preload(options)  # a bad model fails before any folder is made
    # and so does a painting a fast model cannot paint: each setting's options for each painting, once
    chosen = {name: options_per_painting(name, options, styles) for name, options in parsed}
    images = {p: load_image(p) for p in [*contents, *styles]}
    make_folder(out_dir)
    summary: dict[str, Any] = {"settings": {}, "pairs": [[str(c), str(s)] for c in contents for s in styles]}
    grid_rows: list[list[Any]] = [[images[c], images[s]] for c in contents for s in styles]
    for name, options in parsed:
        runs, pairs = _run_setting(name, chosen[name], contents, styles, images, out_dir / name, grid_rows,
                                   on_output)
        result = evaluate(pairs, size=eval_size)
        write_report(result, out_dir / name / "report")
        summary["settings"][name] = {**stylizer.record(options), "runs": runs, "aggregate": result["aggregate"],
                                     "mean_seconds": sum(r["seconds"] for r in runs) / len(runs)}
    from impasto.sheet import grid

    labels = [x for c in contents for s in styles for x in (c.stem, s.stem, *(n for n, _ in parsed))]
    cells = [img for row in grid_rows for img in row]
    save_image(grid(cells, columns=2 + len(parsed), cell=256, labels=labels), out_dir / "side_by_side.png")
    summary["sheet"] = str(out_dir / "side_by_side.png")
    write_bytes_atomic(out_dir / "compare.json", json.dumps(summary, indent=1).encode())
    return summary


def fast_for_painting(options: stylizer.FastOptions, painting: Path, name: str) -> stylizer.FastOptions:
    """A fast setting paints its model's own styles, so compare (and a survey) gives it the style whose
    bundled painting is this very file (the same bytes), or the one the setting chose (style_index /
    style_mix). Any other painting is refused: the output would be labelled and scored as a painting the
    network never saw."""
    if options.style_index is not None or options.style_mix is not None:
        return options
    from impasto import bundled
    from impasto.methods import load_fast_model

    _, meta = load_fast_model(stylizer.model_path(options))
    names = [str(n) for n in meta.get("styles") or []]
    known = bundled.styles()
    data = painting.read_bytes()
    for index, style in enumerate(names):
        if style in known and known[style].read_bytes() == data:
            return dataclasses.replace(options, style_index=index)
    raise InputError(f"--setting {name}: its fast model paints only its own styles ({', '.join(names)}) and "
                     f"{painting.name} is none of them; give style_index=N in a --setting to compare one anyway")


def options_per_painting(name: str, options: stylizer.Options, paintings: list[Path]
                         ) -> dict[Path, stylizer.Options]:
    """The options a setting runs with on each painting: its own, or for a fast setting the style
    :func:`fast_for_painting` chose (refused in one line when it has none)."""
    if not isinstance(options, stylizer.FastOptions):
        return dict.fromkeys(paintings, options)
    return {p: fast_for_painting(options, p, name) for p in paintings}


def _run_setting(name: str, per_painting: dict[Path, stylizer.Options], contents: list[Path], styles: list[Path],
                 images: dict[Path, Any], folder: Path, grid_rows: list[list[Any]],
                 on_output: OnOutput | None = None) -> tuple[list[Any], list[Pair]]:
    """Every (content, style) pair through one setting (its options for each painting: see
    :func:`options_per_painting`); the images go into ``folder`` and the grid."""
    folder.mkdir(exist_ok=True)
    runs, pairs = [], []
    for i, (c, s) in enumerate((c, s) for c in contents for s in styles):
        chosen = per_painting[s]
        t0 = time.perf_counter()
        request = stylizer.StylizeRequest(images[c], [images[s]], chosen)
        try:
            out = stylizer.stylize(request)
        except ImpastoError as exc:
            raise InputError(f"--setting {name} on {c.name}: {exc}") from exc
        target = save_image(out.image, folder / f"{c.stem}_{s.stem}.png")
        runs.append({"content": str(c), "style": str(s), "output": str(target),
                     "seconds": time.perf_counter() - t0,
                     "process_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                     "device": out.record.get("device"), "precision": out.record.get("precision"),
                     **({"style_index": chosen.style_index} if isinstance(chosen, stylizer.FastOptions) else {})})
        pairs.append(Pair(c, s, target))
        grid_rows[i].append(out.image)
        if on_output is not None:
            on_output(out.record, c, s, target, out.image)
    return runs, pairs
