"""``impasto evaluate``: per-pair and aggregate metrics as JSON plus an HTML report with thumbnails and plots."""

from __future__ import annotations

import csv
import html
import json
import math
import resource
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from impasto import metrics
from impasto.errors import InputError
from impasto.io import list_images, load_image, make_folder, resize_long, save_image, write_bytes_atomic

PER_PAIR = ("content_loss", "style_loss", "perceptual_to_content", "ssim_luminance", "ssim_rgb", "psnr")


@dataclass
class Pair:
    content: Path
    style: Path
    stylized: Path


def find_pairs(content_dir: Path, style_dir: Path, stylized_dir: Path, pairs_csv: Path | None = None) -> list[Pair]:
    """From a CSV (columns content, style, stylized; paths relative to the folders), or by file names: a
    stylized file belongs to the content whose stem starts its name, and to the only style or the style
    whose stem appears in its name."""
    if pairs_csv is not None:
        if not pairs_csv.is_file():
            raise InputError(f"{pairs_csv}: no such pairs file")
        try:  # utf-8-sig: a spreadsheet's "CSV UTF-8" starts with a byte-order mark
            with open(pairs_csv, newline="", encoding="utf-8-sig") as fh:
                reader = csv.DictReader(fh)
                rows = [(reader.line_num, r) for r in reader]  # the line a row ends on, blank lines counted
                header = reader.fieldnames or []
        except (UnicodeDecodeError, csv.Error) as exc:
            raise InputError(f"{pairs_csv}: not a readable CSV file ({exc})") from exc
        columns = ("content", "style", "stylized")
        if not set(columns) <= set(header):
            raise InputError(f"{pairs_csv}: needs a header with columns content, style, stylized")
        if not rows:
            raise InputError(f"{pairs_csv}: has a header but no rows")
        for line, r in rows:
            if any(not r.get(k) for k in columns):
                raise InputError(f"{pairs_csv}: line {line} needs a content, a style and a stylized file name")
        pairs = [Pair(content_dir / r["content"], style_dir / r["style"], stylized_dir / r["stylized"])
                 for _, r in rows]
        for p in pairs:
            for f in (p.content, p.style, p.stylized):
                if not f.is_file():
                    raise InputError(f"{pairs_csv}: {f} does not exist")
        return pairs
    contents, styles = list_images(content_dir), list_images(style_dir)
    if not contents or not styles:
        raise InputError("--content and --style folders must hold images")
    pairs = []
    for out in list_images(stylized_dir):
        c = max((c for c in contents if out.stem.startswith(c.stem)), key=lambda c: len(c.stem), default=None)
        s = styles[0] if len(styles) == 1 else max((s for s in styles if s.stem in out.stem),
                                                    key=lambda s: len(s.stem), default=None)
        if c is not None and s is not None:
            pairs.append(Pair(c, s, out))
    if not pairs:
        raise InputError(f"no stylized image in {stylized_dir} could be matched to a content and a style "
                         "(name them CONTENT_..._STYLE.png or pass --pairs CSV)")
    return pairs


def evaluate(pairs: list[Pair], size: int = 512) -> dict[str, Any]:
    """Every metric for every pair (images at ``size`` on the long side) plus set-level vgg-fd/ArtFID."""
    t0 = time.perf_counter()
    rows, stylized_imgs, style_imgs = [], [], {}
    for p in pairs:
        c, s, x = (resize_long(load_image(f), size) for f in (p.content, p.style, p.stylized))
        x = metrics._same_size(x, c)
        stylized_imgs.append(x)
        style_imgs[str(p.style)] = s
        rows.append({
            "content": str(p.content), "style": str(p.style), "stylized": str(p.stylized),
            "content_loss": metrics.content_loss(x, c), "style_loss": metrics.style_loss(x, s),
            "perceptual_to_content": metrics.perceptual_distance(x, c),
            "ssim_luminance": metrics.ssim(x, c, "luminance"), "ssim_rgb": metrics.ssim(x, c, "rgb"),
            "psnr": _finite(metrics.psnr(x, c)),
        })
    fd = metrics.vgg_fd(stylized_imgs, list(style_imgs.values()))
    agg = {k: statistics.fmean(r[k] for r in rows if r[k] is not None) for k in PER_PAIR
           if any(r[k] is not None for r in rows)}
    agg["vgg_fd_to_styles"] = fd
    agg["artfid_style"] = metrics.artfid_style(agg["perceptual_to_content"], fd)
    return {"pairs": rows, "aggregate": agg, "n_pairs": len(rows), "size": size,
            "seconds": time.perf_counter() - t0,
            "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "notes": {"psnr": "null means identical images (infinite PSNR)",
                      "perceptual_to_content": "LPIPS-style, uncalibrated VGG-16 distance (not LPIPS)",
                      "vgg_fd_to_styles": "Frechet distance of VGG-16 relu5_3 features (not FID)"}}


def _finite(v: float) -> float | None:
    return v if math.isfinite(v) else None


def write_report(result: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """report.json, index.html, thumbs/ and metric histograms in ``out_dir``."""
    make_folder(out_dir)
    thumbs = make_folder(out_dir / "thumbs")
    json_path = out_dir / "report.json"
    write_bytes_atomic(json_path, json.dumps(result, indent=1).encode())
    plot = out_dir / "metrics.png"
    _plot(result, plot)
    body = []
    for i, r in enumerate(result["pairs"]):
        cells = []
        for key in ("content", "style", "stylized"):
            thumb = thumbs / f"{i:04d}_{key}.jpg"
            save_image(resize_long(load_image(r[key]), 192), thumb, quality=85)
            cells.append(f'<td><img src="thumbs/{thumb.name}" alt="{key}"><br><small>'
                         f"{html.escape(Path(r[key]).name)}</small></td>")
        nums = "".join(f"<td>{_fmt(r[k])}</td>" for k in PER_PAIR)
        body.append(f"<tr>{''.join(cells)}{nums}</tr>")
    agg = "".join(f"<tr><th>{html.escape(k)}</th><td>{_fmt(v)}</td></tr>" for k, v in result["aggregate"].items())
    head = "".join(f"<th>{h}</th>" for h in ("content", "style", "stylized", *PER_PAIR))
    notes = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in result["notes"].items())
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>impasto evaluation</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:4px 8px;border-bottom:1px solid #ddd;text-align:center}}
img{{max-width:192px}}</style></head><body><h1>impasto evaluation</h1>
<p>{result['n_pairs']} pairs at {result['size']} px, {result['seconds']:.1f}s,
peak {result['peak_memory_mb']:.0f} MB.</p>
<h2>Aggregate</h2><table>{agg}</table><ul>{notes}</ul><img src="metrics.png" style="max-width:900px" alt="plots">
<h2>Pairs</h2><table><tr>{head}</tr>{''.join(body)}</table></body></html>"""
    html_path = out_dir / "index.html"
    write_bytes_atomic(html_path, page.encode())
    return {"json": json_path, "html": html_path, "plot": plot}


def _fmt(v: Any) -> str:
    return "inf" if v is None else f"{v:.4g}" if isinstance(v, float) else html.escape(str(v))


def _plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in PER_PAIR if any(r[k] is not None for r in result["pairs"])]
    fig, axes = plt.subplots(1, len(keys), figsize=(3 * len(keys), 2.6), dpi=100)
    for ax, k in zip(axes, keys, strict=True):
        ax.hist([r[k] for r in result["pairs"] if r[k] is not None], bins=10, color="#4a6fa5")
        ax.set_title(k, fontsize=8)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
