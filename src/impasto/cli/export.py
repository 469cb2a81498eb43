"""``impasto export onnx MODEL -o model.onnx``: a fast-style network for onnxruntime and friends."""

from __future__ import annotations

import argparse
import sys

from impasto.cli.common import int_in, path_arg, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a trained model (onnx)")
    esub = p.add_subparsers(dest="format", metavar="FORMAT")
    esub.required = True
    o = esub.add_parser("onnx", help="fast-style model to ONNX (inputs: image NCHW in [0,1], style_mix N x S)")
    o.add_argument("model", type=path_arg)
    o.add_argument("-o", "--output", type=path_arg, required=True)
    o.add_argument("--opset", type=int_in(11, 20), default=17,
                   help="ONNX opset, 11 to 20 (17): what torch's TorchScript exporter writes for these networks")
    o.add_argument("--no-check", action="store_true", help="skip the onnxruntime parity check")
    o.add_argument("--json", action="store_true")
    o.set_defaults(func=run_onnx)


def run_onnx(args: argparse.Namespace) -> int:
    from impasto.export import export_fast_onnx

    report = export_fast_onnx(args.model, args.output, opset=args.opset, check=not args.no_check)
    if args.json:
        print_json(report)
    else:
        diff = report.get("max_abs_diff")
        extra = f"; onnxruntime max |diff| {diff * 255:.3f}/255" if diff is not None else ""
        print(f"wrote {args.output}{extra}", file=sys.stderr)
    return 0
