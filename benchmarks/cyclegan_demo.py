"""How well did a CycleGAN learn the demo's A->B (photo -> sepia print)? Prints JSON.

The demo data (``impasto data cyclegan-demo DIR``) holds held-out photos with their true B version, so
the translation can be scored against ground truth the trainer never saw: mean absolute error and PSNR
of translate(A_val) vs A_val_target, and the error of the mean colour (the sepia cast), next to the
do-nothing baseline (A_val itself).

    python benchmarks/cyclegan_demo.py --data build/cyclegan_demo --model build/cyclegan_demo_run
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from impasto.io import load_image
from impasto.metrics import psnr
from impasto.translate import translate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--model", type=Path, required=True)
    args = ap.parse_args()
    rows = []
    for src in sorted((args.data / "A_val").glob("*.png")):
        x, target = load_image(src), load_image(args.data / "A_val_target" / src.name)
        y, _ = translate(x, args.model, precision="fp32")
        tone = target.mean(dim=(2, 3))  # the global colour cast the filter gives: what must be learned
        rows.append({"baseline_mae": float((x - target).abs().mean()), "model_mae": float((y - target).abs().mean()),
                     "baseline_tone_err": float((x.mean(dim=(2, 3)) - tone).abs().mean()),
                     "model_tone_err": float((y.mean(dim=(2, 3)) - tone).abs().mean()),
                     "baseline_psnr": float(psnr(x, target)), "model_psnr": float(psnr(y, target))})
    mean = {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}
    print(json.dumps({"images": len(rows), **mean, "mae_ratio_baseline_over_model":
                      mean["baseline_mae"] / mean["model_mae"]}, indent=1))


if __name__ == "__main__":
    main()
