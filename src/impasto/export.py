"""ONNX export of fast-style networks, with an onnxruntime parity check against torch."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from impasto.errors import InputError
from impasto.io import atomic_path


def export_fast_onnx(model: str | Path, output: str | Path, *, opset: int = 17, check: bool = True
                     ) -> dict[str, Any]:
    from impasto.methods import load_fast_model

    out = Path(output)
    if out.suffix != ".onnx":
        raise InputError(f"{out}: the output should end in .onnx")
    if not out.parent.is_dir() and str(out.parent):
        raise InputError(f"{out}: directory {out.parent} does not exist")
    net, meta = load_fast_model(model)
    net = net.cpu().float()  # the cached network may sit on a GPU from an earlier stylize call
    n = int(meta["n_styles"])
    x = torch.rand(1, 3, 64, 96)
    mix = torch.nn.functional.one_hot(torch.tensor([0]), n).float()
    with atomic_path(out) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer chatter about instance norm and slices
        torch.onnx.export(net, (x, mix), str(tmp), input_names=["image", "style_mix"], output_names=["stylized"],
                          dynamic_axes={"image": {0: "n", 2: "h", 3: "w"}, "style_mix": {0: "n"},
                                        "stylized": {0: "n", 2: "h", 3: "w"}},
                          opset_version=opset, dynamo=False)
    report: dict[str, Any] = {"model": str(model), "onnx": str(out), "n_styles": n, "styles": meta.get("styles")}
    if check:
        report["max_abs_diff"] = onnx_parity(net, out, n)
    return report


def onnx_parity(net: torch.nn.Module, path: Path, n_styles: int, size: tuple[int, int] = (131, 77)) -> float:
    """Largest |torch - onnxruntime| over a test image whose size differs from the traced one."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, *size, generator=gen)
    mix = torch.full((1, n_styles), 1.0 / n_styles)
    got = session.run(None, {"image": x.numpy(), "style_mix": mix.numpy()})[0]
    with torch.inference_mode():
        want = net(x, mix).numpy()
    return float(abs(got - want).max())
