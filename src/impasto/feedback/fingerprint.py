"""What the feedback store keeps instead of images: sha256 fingerprints, and opt-in small thumbnails.

A fingerprint tells "the same photo again" (and finds a moved output) without keeping a single pixel.
Files are fingerprinted by their bytes; images that never were a file (web uploads, tensors) by their
decoded 8-bit RGB pixels and size, so the same picture gives the same fingerprint however it arrived.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from impasto.feedback.store import RunRecord

THUMBNAIL_SIZE = 128


def bytes_fingerprint(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_fingerprint(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's bytes, read in blocks (outputs can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _pil(image: Any) -> Any:
    from PIL import Image

    from impasto.io import load_image, tensor_to_pil, to_rgb

    if isinstance(image, Image.Image):
        return to_rgb(image)
    return tensor_to_pil(load_image(image))  # a tensor or an array, in the one image convention


def pixels_fingerprint(image: Any) -> str:
    """sha256 of the decoded pixels (8-bit RGB) and the size: a tensor, an array or a PIL image."""
    pil = _pil(image)
    return bytes_fingerprint(f"{pil.width}x{pil.height}:".encode() + pil.tobytes())


def thumbnail_png(image: Any, size: int = THUMBNAIL_SIZE) -> bytes:
    """A small PNG (long side ``size``) of an output, for history pages; kept only when opted in."""
    from impasto.io import encode_png

    pil = _pil(image).copy()
    pil.thumbnail((size, size))
    return encode_png(pil)


def fingerprint(source: Any) -> str:
    """The fingerprint of whatever a front end holds: a path (its bytes), bytes, or a decoded image."""
    if isinstance(source, bytes | bytearray):
        return bytes_fingerprint(bytes(source))
    if isinstance(source, str | os.PathLike):
        return file_fingerprint(source)
    return pixels_fingerprint(source)


def run_record(output: dict[str, Any], *, content: Any, styles: list[Any], result: Any,
               source: str = "web", thumbnail: Any | None = None) -> RunRecord:
    """A :class:`~impasto.feedback.store.RunRecord` for one stylization, images reduced to fingerprints.

    ``output`` is the contract's record (``StylizeOutput.record``); ``content`` and ``styles`` are paths,
    bytes or decoded images; ``result`` is the output file's path (kept, and hashed) or the PNG bytes
    served; ``thumbnail`` is the output image when the user opted in (None: no thumbnail)."""
    from impasto.feedback.store import RunRecord

    path = str(Path(result).resolve()) if isinstance(result, str | os.PathLike) else None
    return RunRecord.from_output(output, content_fp=fingerprint(content), style_fps=[fingerprint(s) for s in styles],
                                 output_path=path, output_hash=fingerprint(result), source=source,
                                 thumbnail=thumbnail_png(thumbnail) if thumbnail is not None else None)
