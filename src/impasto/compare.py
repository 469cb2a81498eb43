"""``impasto compare``: run several methods or settings on the same pairs and put them side by side.

A setting is ``NAME:key=value,key=value`` (keys are the method's keyword arguments, plus ``method``),
e.g. ``gatys:method=gatys,size=256`` or ``fast:method=fast,style_index=1``. Every run's time and the
process's peak memory are recorded; every setting gets the same metrics as ``impasto evaluate``.
"""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path
from typing import Any

from impasto.errors import ImpastoError, InputError
from impasto.io import load_image, save_image, write_bytes_atomic
from impasto.methods import METHODS
from impasto.report import Pair, evaluate, write_report

NUMERIC = {"size", "iterations", "style_index", "seed", "max_size"}
FLOATS = {"content_weight", "style_weight", "tv_weight", "strength", "style_scale"}


def parse_setting(text: str) -> tuple[str, dict[str, Any]]:
    name, _, rest = text.partition(":")
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise InputError(f"--setting {text!r}: expected NAME:key=value,... with a plain NAME")
    kwargs: dict[str, Any] = {"method": "gatys"}
    for part in filter(None, rest.split(",")):
        key, eq, value = part.partition("=")
        if not eq:
            raise InputError(f"--setting {text!r}: {part!r} is not key=value")
        key = key.strip().replace("-", "_")
        try:
            kwargs[key] = int(value) if key in NUMERIC else float(value) if key in FLOATS else value
        except ValueError as exc:
            raise InputError(f"--setting {text!r}: {key} needs a number, got {value!r}") from exc
    if kwargs["method"] not in METHODS:
        raise InputError(f"--setting {text!r}: unknown method {kwargs['method']!r} ({', '.join(METHODS)})")
    return name, kwargs


def run_compare(contents: list[Path], styles: list[Path], settings: list[str], out_dir: Path,
                eval_size: int = 512) -> dict[str, Any]:
    parsed = [parse_setting(s) for s in settings]
    if len({n for n, _ in parsed}) != len(parsed):
        raise InputError("--setting names must be unique")
    out_dir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"settings": {}, "pairs": [[str(c), str(s)] for c in contents for s in styles]}
    grid_rows: list[list[Any]] = [[load_image(c), load_image(s)] for c in contents for s in styles]
    for name, kwargs in parsed:
        method = kwargs.pop("method")
        folder = out_dir / name
        folder.mkdir(exist_ok=True)
        runs, pairs = [], []
        for i, (c, s) in enumerate((c, s) for c in contents for s in styles):
            t0 = time.perf_counter()
            try:
                if method == "gatys":
                    image, info = METHODS[method](load_image(c), [load_image(s)], **kwargs)
                else:
                    image, info = METHODS[method](load_image(c), **kwargs)
            except TypeError as exc:
                raise InputError(f"--setting {name}: {exc}") from exc
            except ImpastoError as exc:
                raise InputError(f"--setting {name} on {c.name}: {exc}") from exc
            target = save_image(image, folder / f"{c.stem}_{s.stem}.png")
            runs.append({"content": str(c), "style": str(s), "output": str(target),
                         "seconds": time.perf_counter() - t0,
                         "process_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                         "device": info.get("device"), "precision": info.get("precision")})
            pairs.append(Pair(c, s, target))
            grid_rows[i].append(image)
        result = evaluate(pairs, size=eval_size)
        write_report(result, folder / "report")
        summary["settings"][name] = {"method": method, "options": kwargs, "runs": runs,
                                     "aggregate": result["aggregate"],
                                     "mean_seconds": sum(r["seconds"] for r in runs) / len(runs)}
    from impasto.sheet import grid

    labels = [x for c in contents for s in styles for x in (c.stem, s.stem, *(n for n, _ in parsed))]
    cells = [img for row in grid_rows for img in row]
    save_image(grid(cells, columns=2 + len(parsed), cell=256, labels=labels), out_dir / "side_by_side.png")
    summary["sheet"] = str(out_dir / "side_by_side.png")
    write_bytes_atomic(out_dir / "compare.json", json.dumps(summary, indent=1).encode())
    return summary
