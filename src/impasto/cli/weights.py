"""``impasto weights list|verify|download``: what pretrained weights exist, where, and are they intact."""

from __future__ import annotations

import argparse
from typing import Any

from impasto.cli.common import print_json
from impasto.errors import ImpastoError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="list, verify or download pretrained VGG weights")
    wsub = p.add_subparsers(dest="action", metavar="ACTION")
    wsub.required = True
    ls = wsub.add_parser("list", help="show every weights entry, its preprocessing and where it is")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=run_list)
    ve = wsub.add_parser("verify", help="load every available entry and check its hash")
    ve.add_argument("--json", action="store_true")
    ve.set_defaults(func=run_verify)
    dl = wsub.add_parser("download", help="download a torchvision weights file (needs a network)")
    dl.add_argument("name", help="e.g. vgg19-torchvision")
    dl.set_defaults(func=run_download)


def _status(entry: Any) -> tuple[bool, str]:
    from impasto.features.weights import cache_dir, onnx_path

    try:
        if entry.filename is None:
            cached = cache_dir() / "vgg16-keras-offline.safetensors"
            where = str(cached) if cached.exists() else f"{onnx_path()} (converted on first use)"
            return True, where
        return True, str(entry.locate())
    except ImpastoError as exc:
        return False, str(exc)


def run_list(args: argparse.Namespace) -> int:
    from impasto.features import Weights

    rows = []
    for w in Weights:
        e = w.entry
        ok, where = _status(e)
        rows.append({"name": e.name, "arch": e.arch, "available": ok, "where": where,
                     "preprocess": e.preprocess.as_dict(), "description": e.description})
    if args.json:
        print_json({"weights": rows})
    else:
        for r in rows:
            mark = "yes" if r["available"] else "no "
            print(f"{r['name']:<22} {r['arch']:<6} available: {mark}  {r['where']}")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from impasto.features import Weights

    rows, failed = [], False
    for w in Weights:
        ok, where = _status(w.entry)
        if not ok:
            rows.append({"name": w.entry.name, "status": "missing", "detail": where})
            continue
        try:
            state = w.entry.state_dict()
            rows.append({"name": w.entry.name, "status": "ok", "tensors": len(state), "where": where})
        except ImpastoError as exc:
            failed = True
            rows.append({"name": w.entry.name, "status": "bad", "detail": str(exc)})
    if args.json:
        print_json({"weights": rows})
    else:
        for r in rows:
            print(f"{r['name']:<22} {r['status']:<8} {r.get('detail') or r.get('where')}")
    return 2 if failed else 0


def run_download(args: argparse.Namespace) -> int:
    from impasto.features import Weights

    entry = Weights.from_name(args.name).entry
    path = entry.download()
    print(f"downloaded {entry.name} to {path} (sha256 verified)")
    return 0
