"""Images in and out: one convention everywhere, float32 RGB tensors in [0, 1] shaped (1, 3, H, W).

Loading honours EXIF rotation, converts every mode (CMYK, 16-bit, alpha, grey, palette) to RGB, and
refuses decompression bombs with a clear message. Saving is atomic: a temp file in the target
directory, fsynced, then renamed, so a crash never leaves a half-written image.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from impasto.errors import InputError

#: Largest image (in pixels) that :func:`load_image` accepts; override with IMPASTO_MAX_PIXELS.
DEFAULT_MAX_PIXELS = 64_000_000
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")

ImageLike = "str | os.PathLike[str] | Image.Image | np.ndarray | torch.Tensor"


def max_pixels() -> int:
    raw = os.environ.get("IMPASTO_MAX_PIXELS")
    if raw is None:
        return DEFAULT_MAX_PIXELS
    try:
        return int(raw)
    except ValueError as exc:
        raise InputError(f"IMPASTO_MAX_PIXELS must be an integer, got {raw!r}") from exc


def _open_checked(source: str | os.PathLike[str] | BinaryIO, name: str) -> Image.Image:
    """Open and fully decode an image, turning every PIL failure into a one-line InputError."""
    limit = max_pixels()
    try:
        with warnings.catch_warnings():
            # Image.open reads only the header; our own size check below runs before any decoding
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(source)
            w, h = img.size
            if w * h > limit:
                raise InputError(
                    f"{name}: {w}x{h} is {w * h / 1e6:.0f} megapixels, above the limit of "
                    f"{limit / 1e6:g} (set IMPASTO_MAX_PIXELS to raise it)"
                )
            img.load()
    except Image.DecompressionBombError as exc:
        raise InputError(f"{name}: more megapixels than the decompression-bomb guard allows ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise InputError(f"{name}: not an image file (or an unsupported format)") from exc
    except FileNotFoundError as exc:
        raise InputError(f"{name}: no such file") from exc
    except IsADirectoryError as exc:
        raise InputError(f"{name}: is a directory, expected an image file") from exc
    except PermissionError as exc:
        raise InputError(f"{name}: permission denied") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{name}: corrupt or truncated image ({exc})") from exc
    return img


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode to 8-bit RGB: EXIF rotation applied, alpha composited on white, 16-bit scaled."""
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        if img.mode == "F":
            hi = max(float(arr.max()), 1.0) if arr.max() > 1.0 else 1.0
        arr = np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        img = Image.fromarray(arr, mode="L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB")


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    arr = np.asarray(to_rgb(img), dtype=np.float32) / 255.0
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).unsqueeze(0).contiguous()


def load_image(source: ImageLike, *, name: str | None = None) -> torch.Tensor:  # type: ignore[valid-type]
    """Load a file path, PIL image, HxWx3 uint8/float array or tensor as a (1,3,H,W) [0,1] tensor."""
    if isinstance(source, torch.Tensor):
        t = source.detach().float()
        if t.dim() == 3:
            t = t.unsqueeze(0)
        if t.dim() != 4 or t.shape[1] not in (1, 3):
            raise InputError(f"expected an image tensor shaped (3,H,W) or (1,3,H,W), got {tuple(t.shape)}")
        return t.expand(-1, 3, -1, -1).clamp(0, 1).contiguous()
    if isinstance(source, np.ndarray):
        arr = source
        if arr.dtype == np.uint8:
            arr = arr.astype(np.float32) / 255.0
        arr = np.asarray(arr, dtype=np.float32)
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=2)
        if arr.ndim != 3 or arr.shape[2] not in (3, 4):
            raise InputError(f"expected an HxWx3 image array, got shape {arr.shape}")
        return torch.from_numpy(arr[..., :3].copy()).permute(2, 0, 1).unsqueeze(0).clamp(0, 1)
    if isinstance(source, Image.Image):
        return pil_to_tensor(source)
    path = Path(source)
    label = name or str(path)
    if not path.exists():
        raise InputError(f"{label}: no such file")
    return pil_to_tensor(_open_checked(path, label))


def load_image_bytes(data: bytes, *, name: str = "upload") -> torch.Tensor:
    """Decode image bytes (uploads, stdin) with the same checks as files."""
    return pil_to_tensor(_open_checked(io.BytesIO(data), name))


def tensor_to_pil(image: torch.Tensor) -> Image.Image:
    t = image.detach().float().cpu()
    if t.dim() == 4:
        if t.shape[0] != 1:
            raise ValueError("tensor_to_pil takes one image; index the batch first")
        t = t[0]
    arr = (t.clamp(0, 1).permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(arr, mode="RGB")


def _format_for(path: Path) -> str:
    ext = path.suffix.lower()
    return {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".bmp": "BMP",
            ".tif": "TIFF", ".tiff": "TIFF"}.get(ext, "")


def encode_png(image: torch.Tensor | Image.Image) -> bytes:
    pil = image if isinstance(image, Image.Image) else tensor_to_pil(image)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]):
    """Yield a temp path beside ``path``; on success fsync and rename it over ``path``."""
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{target}: output directory {parent} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
    except PermissionError as exc:
        raise InputError(f"{target}: output directory is not writable") from exc
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs should look like any other file
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def save_image(image: torch.Tensor | Image.Image, path: str | os.PathLike[str], *, quality: int = 95) -> Path:
    """Write an image atomically; the format follows the suffix (PNG when unknown)."""
    target = Path(path)
    fmt = _format_for(target)
    if not fmt:
        raise InputError(f"{target}: unknown image suffix {target.suffix!r} (use .png, .jpg, .webp, .tif)")
    pil = image if isinstance(image, Image.Image) else tensor_to_pil(image)
    with atomic_path(target) as tmp:
        kwargs = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
        pil.save(tmp, format=fmt, **kwargs)
    return target


def fit_size(h: int, w: int, long_side: int) -> tuple[int, int]:
    """(H, W) scaled so the longer side is ``long_side``, aspect kept, at least 1 pixel."""
    scale = long_side / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Antialiased bicubic resize of a (N,3,H,W) tensor to (H, W), clamped to [0, 1]."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    shrinking = size[0] < image.shape[-2] or size[1] < image.shape[-1]
    out = F.interpolate(image, size=size, mode="bicubic", align_corners=False, antialias=shrinking)
    return out.clamp(0, 1)


def resize_long(image: torch.Tensor, long_side: int) -> torch.Tensor:
    return resize(image, fit_size(image.shape[-2], image.shape[-1], long_side))


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """Image files in a folder (not recursive), sorted, by suffix."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"{root}: not a directory")
    return sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
