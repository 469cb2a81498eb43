"""The survey report as one HTML page: the tables and every image, linked (never copied or embedded,
so the page stays small and the images stay where the survey keeps them)."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

_STYLE = ("body{font-family:sans-serif;margin:2em;max-width:1200px}td,th{padding:4px 8px;border-bottom:1px solid #ddd;"
          "text-align:center}img{max-width:180px;max-height:180px}caption{text-align:left;font-weight:bold}")


def _href(image: str, page_dir: Path) -> str:
    """A link relative to the page (the folder can move as a whole), else a file URI."""
    try:
        return quote(Path(os.path.relpath(image, page_dir)).as_posix())
    except ValueError:  # another drive (Windows)
        return Path(image).resolve().as_uri()


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _rate_cells(r: dict[str, Any]) -> str:
    return (f"<td>{r['wins']}</td><td>{r['losses']}</td><td>{r['ties']}</td><td>{_pct(r['rate'])}</td>"
            f"<td>{_pct(r['low'])} - {_pct(r['high'])}</td>")


def _tables(report: dict[str, Any]) -> str:
    rate_head = "<th>wins</th><th>losses</th><th>ties</th><th>win rate</th><th>95% Wilson</th>"
    bt = report["bradley_terry"]
    overall = "".join(f"<tr><th>{html.escape(n)}</th>{_rate_cells(r)}<td>{bt[n]['strength']:.3f}</td>"
                      f"<td>{bt[n]['low']:.3f} - {bt[n]['high']:.3f}</td></tr>" for n, r in report["overall"].items())
    matchups = "".join(f"<tr><th>{html.escape(m['a'])}</th><th>{html.escape(m['b'])}</th>{_rate_cells(m)}</tr>"
                       for m in report["matchups"])
    return (f"<table><caption>Overall (ties count half, skips left out)</caption><tr><th>variant</th>{rate_head}"
            f"<th>Bradley-Terry</th><th>95% bootstrap</th></tr>{overall}</table>"
            f"<table><caption>Head to head (rate: how often A beat B)</caption><tr><th>A</th><th>B</th>"
            f"{rate_head.replace('wins', 'A wins').replace('losses', 'B wins')}</tr>{matchups}</table>")


def _gallery(report: dict[str, Any], page_dir: Path) -> str:
    names = [v["name"] for v in report["variants"]]
    head = "".join(f"<th>{html.escape(n)}</th>" for n in ["photo", "painting", *names])
    rows = []
    for entry, scores in zip(report["images"], report["by_image"], strict=True):
        cells = [entry["photo"], entry["painting"], *(entry["outputs"].get(n) for n in names)]
        imgs = "".join(f"<td><img src=\"{html.escape(_href(c, page_dir))}\" alt=\"\"></td>" if c else "<td>-</td>"
                       for c in cells)
        rates = "".join(f"<td>{_pct(scores['variants'][n]['rate'])} (n={scores['variants'][n]['n']})</td>"
                        for n in names)
        rows.append(f"<tr>{imgs}</tr><tr><td colspan=\"2\">win rate</td>{rates}</tr>")
    return f"<table><caption>Images</caption><tr>{head}</tr>{''.join(rows)}</table>"


def survey_page(report: dict[str, Any], page_dir: Path) -> str:
    """The report (from :func:`impasto.feedback.survey.survey_report`) as HTML with links relative to
    ``page_dir``."""
    settings = "".join(f"<li><b>{html.escape(v['name'])}</b>: {html.escape(v['method'])} "
                       f"<code>{html.escape(json.dumps(v['options'], default=str))}</code></li>"
                       for v in report["variants"])
    title = html.escape(f"impasto survey {report['survey']}")
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title><style>{_STYLE}</style>"
            f"</head><body><h1>{title}</h1><p>{report['answers']} answers ({report['skipped']} skipped) from "
            f"{report['respondents']} respondent(s); sides and order drawn with seed {report['seed']}.</p>"
            f"<ul>{settings}</ul>{_tables(report)}{_gallery(report, page_dir)}</body></html>")


def write_survey_page(report: dict[str, Any], path: Path) -> Path:
    from impasto.io import write_bytes_atomic

    write_bytes_atomic(path, survey_page(report, path.resolve().parent).encode())
    return path
