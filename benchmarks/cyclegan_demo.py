"""How well did a CycleGAN learn the demo's A->B (photo -> sepia print)? Prints JSON.

The demo data (``impasto data cyclegan-demo DIR``) holds held-out photos with their true B version, so
the translation can be scored against ground truth the trainer never saw: mean absolute error and PSNR
and luminance SSIM of translate(A_val) vs A_val_target (structure), and the chromaticity error (the
sepia cast, what the translation must learn), each next to the do-nothing baseline (A_val itself).

    python benchmarks/cyclegan_demo.py --data build/cyclegan_demo --model build/cyclegan_demo_run
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from impasto.io import load_image
from impasto.metrics import psnr, ssim
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
        rows.append({"baseline_mae": float((x - target).abs().mean()), "model_mae": float((y - target).abs().mean()),
                     "baseline_chroma_err": chroma_error(x, target), "model_chroma_err": chroma_error(y, target),
                     "baseline_ssim": ssim(x, target), "model_ssim": ssim(y, target),
                     "baseline_psnr": float(psnr(x, target)), "model_psnr": float(psnr(y, target))})
    mean = {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}
    print(json.dumps({"images": len(rows), **mean, "chroma_err_ratio_baseline_over_model":
                      mean["baseline_chroma_err"] / mean["model_chroma_err"]}, indent=1))


def chroma_error(x: torch.Tensor, target: torch.Tensor) -> float:
    """Mean absolute difference of per-pixel chromaticity (r, g, b divided by r+g+b): the colour cast
    the filter gives, independent of brightness and of texture."""
    cx = x / (x.sum(1, keepdim=True) + 1e-3)
    ct = target / (target.sum(1, keepdim=True) + 1e-3)
    return float((cx - ct).abs().mean())


if __name__ == "__main__":
    main()
