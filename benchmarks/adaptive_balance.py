"""Does one --strength mean the same on every pair? Fixed default weights vs calibrated strength.

For each of 12 content x style pairs from ../shared/images, stylize at 256 px (L-BFGS, 100 iterations)
with (a) the fixed default weights and (b) the adaptive mode at strengths 0.25, 0.5, 0.75. Measured on
each output with one fixed VGG-16 yardstick (content relu4_2 relative error; style: mean over relu1_1..
relu5_1 of the relative Gram error), each as a fraction of the pair's own gap:

* content_lost = content error of the output / content error of the style image (0: all content kept)
* style_left   = style error of the output / style error of the content image (1: no style taken)
* balance      = content_lost / (content_lost + style_left), and the plain ratio content_lost / style_left
* style_left_per_layer: each layer's Gram error as a fraction of that layer's own gap, averaged (the
  mean above is dominated by the layer with the largest relative error), and its ratio likewise

and reports the coefficient of variation (std / mean) of each across pairs, the ratio fixed/adaptive,
whether strength moves every pair monotonically, and K (the default weights' balance in calibrated
units, which sets strength 0.5). Writes docs/adaptive_sheet.jpg (pairs x settings). Prints JSON.

    python benchmarks/adaptive_balance.py [--size 256 --iterations 100]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import torch

from impasto import calibrate
from impasto.device import pick_device, pick_dtype
from impasto.features import Encoder, resolve_weights
from impasto.io import load_image, resize, resize_long
from impasto.losses import ContentLoss, GramStyleLoss
from impasto.optimize import (
    DEFAULT_CONTENT_LAYERS,
    DEFAULT_CONTENT_WEIGHT,
    DEFAULT_STYLE_LAYERS,
    DEFAULT_STYLE_WEIGHT,
    stylize,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "images"
CONTENTS = ("amber", "chicago", "flowers", "golden_gate")
STYLES = ("udnie", "mondrian_cropped", "woman_with_hat_matisse")
STRENGTHS = (0.25, 0.5, 0.75)


def cv(values: list[float]) -> float:
    return statistics.pstdev(values) / statistics.fmean(values)


class Yardstick:
    """Fixed measures, the same for every setting: relative content and mean relative Gram error."""

    def __init__(self) -> None:
        self.enc = Encoder([*DEFAULT_CONTENT_LAYERS, *DEFAULT_STYLE_LAYERS], resolve_weights(None, None))
        self.dev = pick_device("auto")
        self.dtype = pick_dtype(self.dev, "auto")

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, content: torch.Tensor, style: torch.Tensor) -> tuple[float, float]:
        c, per = self.per_layer(x, content, style)
        return c, statistics.fmean(per.values())

    @torch.no_grad()
    def per_layer(self, x: torch.Tensor, content: torch.Tensor, style: torch.Tensor
                  ) -> tuple[float, dict[str, float]]:
        """Content error and the relative Gram error of each style layer."""
        fx, fc, fs = self.enc(x), self.enc(content), self.enc(style)
        c = float(ContentLoss("relu4_2", fc["relu4_2"])(fx))
        targets = GramStyleLoss.targets_from([fs], [1.0], list(DEFAULT_STYLE_LAYERS))
        return c, {n: float(v) for n, v in GramStyleLoss(targets).per_layer(fx).items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--sheet", type=Path, default=Path("docs/adaptive_sheet.jpg"))
    args = ap.parse_args()
    yard = Yardstick()
    rows, cells, labels, k_pairs = [], [], [], []
    t0 = time.perf_counter()
    for cname in CONTENTS:
        for sname in STYLES:
            content = resize_long(load_image(SHARED / "content" / f"{cname}.jpg"), args.size)
            style_path = next((SHARED / "style").glob(f"{sname}.*"))
            style = resize_long(load_image(style_path), args.size)
            style_as_content = resize(style, tuple(content.shape[-2:]))  # type: ignore[arg-type]
            ref_c, _ = yard(style_as_content, content, style)
            _, ref_s = yard(content, content, style)
            _, ref_layers = yard.per_layer(content, content, style)
            unit = GramStyleLoss(GramStyleLoss.targets_from([yard.enc(style)], [1.0], list(DEFAULT_STYLE_LAYERS)))
            r, gaps = calibrate.measure(yard.enc, content, unit, DEFAULT_CONTENT_LAYERS, style, yard.dev, yard.dtype)
            k_pairs.append(DEFAULT_STYLE_WEIGHT / r * statistics.fmean(gaps.values()))
            row = {"pair": f"{cname}+{sname}", "k_default": k_pairs[-1]}
            outs = [content]
            for setting in ("fixed", *STRENGTHS):
                kw = ({"content_weight": DEFAULT_CONTENT_WEIGHT, "style_weight": DEFAULT_STYLE_WEIGHT}
                      if setting == "fixed" else {"strength": setting})  # hand-set weights: no calibration
                out, _ = stylize(content, style, size=args.size, iterations=args.iterations, **kw)
                c, per = yard.per_layer(out, content, style)
                lost, left = c / ref_c, statistics.fmean(per.values()) / ref_s
                # the same, with each layer's error as a fraction of that layer's own gap (no layer dominates)
                left_layers = statistics.fmean(per[n] / max(ref_layers[n], 1e-8) for n in per)
                row[str(setting)] = {"content_lost": lost, "style_left": left, "balance": lost / (lost + left),
                                     "style_left_per_layer": left_layers}
                outs.append(out)
            rows.append(row)
            cells += outs
            labels += [f"{cname}+{sname}", "fixed", *(f"strength {s}" for s in STRENGTHS)]
            print(json.dumps(row), flush=True)

    def spread(setting: str, key: str) -> float:
        return cv([r[setting][key] for r in rows])

    def ratio(setting: str, left: str = "style_left") -> list[float]:
        return [r[setting]["content_lost"] / r[setting][left] for r in rows]

    monotonic = all(
        r["0.25"]["content_lost"] <= r["0.5"]["content_lost"] <= r["0.75"]["content_lost"]
        and r["0.25"]["style_left"] >= r["0.5"]["style_left"] >= r["0.75"]["style_left"] for r in rows)
    summary = {
        "pairs": len(rows), "size": args.size, "iterations": args.iterations,
        "k_geomean_of_default_balance": math.exp(statistics.fmean(math.log(k) for k in k_pairs)),
        "k_in_use": calibrate.K,
        "cv_balance": {"fixed": spread("fixed", "balance"), **{f"strength {s}": spread(str(s), "balance")
                                                               for s in STRENGTHS}},
        "cv_content_lost": {"fixed": spread("fixed", "content_lost"), "strength 0.5": spread("0.5", "content_lost")},
        "cv_style_left": {"fixed": spread("fixed", "style_left"), "strength 0.5": spread("0.5", "style_left")},
        "mean_balance": {"fixed": statistics.fmean(r["fixed"]["balance"] for r in rows),
                         **{f"strength {s}": statistics.fmean(r[str(s)]["balance"] for r in rows) for s in STRENGTHS}},
        "spread_ratio_fixed_over_adaptive_0.5": spread("fixed", "balance") / spread("0.5", "balance"),
        "cv_lost_over_left": {"fixed": cv(ratio("fixed")), **{f"strength {s}": cv(ratio(str(s))) for s in STRENGTHS}},
        "cv_lost_over_left_per_layer": {"fixed": cv(ratio("fixed", "style_left_per_layer")),
                                        **{f"strength {s}": cv(ratio(str(s), "style_left_per_layer"))
                                           for s in STRENGTHS}},
        "sd_log_lost_over_left": {"fixed": statistics.pstdev(math.log(v) for v in ratio("fixed")),
                                  "strength 0.5": statistics.pstdev(math.log(v) for v in ratio("0.5"))},
        "monotonic_in_strength_on_every_pair": monotonic,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    from impasto.io import save_image
    from impasto.sheet import grid

    args.sheet.parent.mkdir(parents=True, exist_ok=True)
    save_image(grid(cells, columns=2 + len(STRENGTHS), cell=180, labels=labels), args.sheet, quality=88)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
