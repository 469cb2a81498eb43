"""Copy a trained model into the package as a bundled model, with what it was measured to do.

The file keeps its kind, tensors (fp16) and training metadata; ``--benchmark`` adds a benchmark's JSON
report (or the keys ``--keep`` names from it) under ``meta["benchmark"]``, so whoever has the package can
read how the shipped model scored without the repository (``impasto.models.files.read_meta``).

    python benchmarks/ship_model.py build/cyclegan_paintings_run --name monet \\
        --benchmark build/cyclegan_paintings_run_eval/report.json \\
        --keep steps,kid_translated_vs_paintings,kid_photos_vs_paintings_baseline
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from impasto.models import files

PACKAGE_MODELS = Path(__file__).resolve().parents[1] / "src" / "impasto" / "assets" / "models"
MAX_BYTES = 20_000_000
#: what ``--set`` may write: provenance only, never a key a model's loader reads (slim, wct_levels, ...)
PROVENANCE = ("recipe", "data", "data_sources", "init", "trained_on", "note")


def ship(source: Path, name: str, benchmark: Path | None, keep: list[str], models: Path = PACKAGE_MODELS,
         notes: dict[str, str] | None = None) -> Path:
    bad = sorted(set(notes or {}) - set(PROVENANCE))
    if bad:
        raise SystemExit(f"ship_model: --set {bad[0]!r}: only {', '.join(PROVENANCE)} may be set")
    src = files.model_file(source)
    kind, _ = files.read_meta(src)
    tensors, meta = files.load(src, kind, dtype=torch.float16)
    meta.update(notes or {})  # provenance the trainer could not know (where the run ran, what data it carried)
    if benchmark is not None:
        report = json.loads(benchmark.read_text())
        missing = [k for k in keep if k not in report]
        if missing:
            raise SystemExit(f"ship_model: {benchmark} has no {', '.join(missing)}")
        meta["benchmark"] = {k: report[k] for k in keep} if keep else report
    dest = files.save(models / f"{name}.safetensors", kind, tensors, meta)
    dest.chmod(0o644)
    if dest.stat().st_size > MAX_BYTES:
        dest.unlink()
        raise SystemExit(f"ship_model: {src} is over {MAX_BYTES // 1_000_000} MB in fp16; not shipped")
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", type=Path, help="a model file or a run folder holding model.safetensors")
    ap.add_argument("--name", required=True, help="the bundled name (assets/models/NAME.safetensors)")
    ap.add_argument("--benchmark", type=Path, help="a benchmark's JSON report to keep in the metadata")
    ap.add_argument("--keep", default="", help="comma list of the report's keys to keep (default: all)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=TEXT",
                    help=f"a provenance entry to add or replace ({', '.join(PROVENANCE)}), e.g. trained_on='an H100'")
    args = ap.parse_args()
    bad = [kv for kv in args.set if "=" not in kv]
    if bad:
        raise SystemExit(f"ship_model: --set {bad[0]!r}: expected KEY=TEXT")
    notes = dict(kv.split("=", 1) for kv in args.set)
    dest = ship(args.model, args.name, args.benchmark, [k for k in args.keep.split(",") if k], notes=notes)
    print(json.dumps({"shipped": str(dest), "bytes": dest.stat().st_size, "kind": files.read_meta(dest)[0]}))


if __name__ == "__main__":
    sys.exit(main())
