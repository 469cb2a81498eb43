"""Offline demonstration data sets, built from the photos inside scikit-image's wheel.

``cyclegan_demo``: two *unpaired* folders, A = crops of one half of the photos, B = crops of the other
half through a known "sepia print" filter. Because the filter is known, held-out A crops come with
their true B version (``A_val_target``), so how well A->B was learned can be measured, not just seen.
"""

from __future__ import annotations

from pathlib import Path

import torch

from impasto.io import load_image, save_image
from impasto.train.data import random_crop, sample_generator

#: a classic sepia matrix (rows: output R, G, B)
SEPIA = torch.tensor([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])


def sepia_print(image: torch.Tensor) -> torch.Tensor:
    """The B look: sepia toning with an S-curve of contrast, (N,3,H,W) in [0,1]."""
    toned = torch.einsum("oc,nchw->nohw", SEPIA, image).clamp(0, 1)
    curved = 0.5 - 0.5 * torch.cos(torch.pi * toned)  # smooth S-curve: deeper shadows, brighter lights
    return (0.85 * curved + 0.1).clamp(0, 1)


def _photos() -> list[torch.Tensor]:
    import tempfile

    from impasto.train.data import export_skimage_photos

    with tempfile.TemporaryDirectory() as tmp:
        return [load_image(p) for p in export_skimage_photos(tmp)]


def cyclegan_demo(dest: str | Path, *, crops: int = 48, size: int = 160, seed: int = 0) -> dict[str, int]:
    """Write dest/A, dest/B, dest/A_val and dest/A_val_target; returns the file counts."""
    root = Path(dest)
    photos = _photos()
    half_a, half_b = photos[0::2], photos[1::2]
    counts = {}
    for name, sources, n, filt in (("A", half_a, crops, False), ("B", half_b, crops, True),
                                   ("A_val", half_a, max(4, crops // 8), False)):
        (root / name).mkdir(parents=True, exist_ok=True)
        if name == "A_val":
            (root / "A_val_target").mkdir(parents=True, exist_ok=True)
        for i in range(n):
            gen = sample_generator(seed + (7 if name == "A_val" else 0), 0, i)
            src = sources[i % len(sources)]
            crop = random_crop(src, size, gen, scale=float(1.2 + 1.5 * torch.rand((), generator=gen)))
            save_image(sepia_print(crop) if filt else crop, root / name / f"{i:04d}.png")
            if name == "A_val":
                save_image(sepia_print(crop), root / "A_val_target" / f"{i:04d}.png")
        counts[name] = n
    return counts


def faces_demo(dest: str | Path, *, pretrain: int = 160, size: int = 32) -> dict[str, int]:
    """Transfer-learning demo from scikit-image's ``lfw_subset.npy`` (200 grey 25x25 faces, in the wheel):
    dest/pretrain = the first ``pretrain`` faces (the large source folder); dest/target = the remaining
    faces as sepia prints (a small new folder in a new look, to fine-tune on). Saved at ``size`` px."""
    import numpy as np

    try:
        import skimage
    except ImportError as exc:
        from impasto.errors import InputError

        raise InputError("scikit-image is needed for its LFW faces: pip install 'impasto[train]'") from exc
    from impasto.io import resize

    faces = torch.from_numpy(np.load(Path(skimage.__file__).parent / "data" / "lfw_subset.npy")).float()
    faces = resize(faces[:, None].expand(-1, 3, -1, -1).contiguous(), (size, size)).clamp(0, 1)
    root = Path(dest)
    counts = {}
    for name, chunk in (("pretrain", faces[:pretrain]), ("target", sepia_print(faces[pretrain:]))):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(chunk):
            save_image(img[None], root / name / f"{i:04d}.png")
        counts[name] = int(chunk.shape[0])
    return counts
