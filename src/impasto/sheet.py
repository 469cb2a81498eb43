"""Contact sheets: labelled rows and grids of images, for demos, docs and batch runs."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image, ImageDraw, ImageFont

from impasto.io import tensor_to_pil

LABEL_H = 22


def _pil(image: torch.Tensor | Image.Image) -> Image.Image:
    return image.convert("RGB") if isinstance(image, Image.Image) else tensor_to_pil(image)


def _font(size: int = 14) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def grid(images: Sequence[torch.Tensor | Image.Image], columns: int, *, cell: int = 256,
         labels: Sequence[str] | None = None, pad: int = 4) -> Image.Image:
    """Images fitted into ``cell``-sized squares (aspect kept), ``columns`` per row, optional labels."""
    if not images:
        raise ValueError("grid needs at least one image")
    columns = max(1, min(columns, len(images)))  # never wider than its images
    rows = (len(images) + columns - 1) // columns
    label_h = LABEL_H if labels else 0
    sheet = Image.new("RGB", (columns * (cell + pad) + pad, rows * (cell + label_h + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    font = _font()
    for i, img in enumerate(images):
        pil = _pil(img)
        scale = cell / max(pil.width, pil.height)  # shrink smoothly, enlarge small samples pixel-true
        pil = pil.resize((max(1, round(pil.width * scale)), max(1, round(pil.height * scale))),
                         Image.LANCZOS if scale < 1 else Image.NEAREST)
        r, c = divmod(i, columns)
        x0, y0 = pad + c * (cell + pad), pad + r * (cell + label_h + pad)
        sheet.paste(pil, (x0 + (cell - pil.width) // 2, y0 + (cell - pil.height) // 2))
        if labels and i < len(labels):
            draw.text((x0 + 2, y0 + cell + 3), labels[i][:40], fill="black", font=font)
    return sheet


def side_by_side(images: Sequence[torch.Tensor | Image.Image], labels: Sequence[str] | None = None,
                 cell: int = 384) -> Image.Image:
    return grid(images, columns=len(images), cell=cell, labels=labels)
