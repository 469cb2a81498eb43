"""Images in and out: one convention everywhere, float32 RGB tensors in [0, 1] shaped (1, 3, H, W).

Loading honours EXIF rotation, converts every mode (CMYK, 16-bit, alpha, grey, palette) to RGB, and
refuses decompression bombs with a clear message. Saving is atomic: a temp file in the target
directory, fsynced, then renamed, so a crash never leaves a half-written image.
"""

from __future__ import annotations

import contextlib
import errno
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

from impasto.errors import ImpastoError, InputError, WriteError

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


def _limit_text(limit: int) -> str:
    return f"impasto's limit of {limit / 1e6:g} megapixels (set IMPASTO_MAX_PIXELS to change it)"


def _follow_our_limit(limit: int) -> None:
    """Let impasto's limit, not Pillow's, decide: Pillow refuses above twice its own MAX_IMAGE_PIXELS
    (179 MP) before our check can run, so IMPASTO_MAX_PIXELS could lower the limit but never raise it.
    Only ever raised, so threads opening images at the same time agree."""
    pillow = Image.MAX_IMAGE_PIXELS
    if pillow is not None and pillow < limit:
        Image.MAX_IMAGE_PIXELS = limit


def _open_checked(source: str | os.PathLike[str] | BinaryIO, name: str) -> Image.Image:
    """Open and fully decode an image, turning every PIL failure into a one-line InputError."""
    limit = max_pixels()
    _follow_our_limit(limit)
    try:
        with warnings.catch_warnings():
            # Image.open reads only the header; our own size check below runs before any decoding
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(source)
            w, h = img.size
            if w * h > limit:
                raise InputError(f"{name}: {w}x{h} is {w * h / 1e6:.3g} megapixels, above {_limit_text(limit)}")
            img.load()
    except Image.DecompressionBombError as exc:  # Pillow's own guard (its message quotes its limit, not ours)
        raise InputError(f"{name}: more pixels than {_limit_text(limit)}") from exc
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


#: modes Little CMS converts, and the mode each becomes
_CMS_MODES = {"RGB": "RGB", "RGBA": "RGBA", "CMYK": "RGB", "L": "RGB"}
_warned_no_cms = False


def to_srgb(img: Image.Image) -> Image.Image:
    """Pixels of an image with an embedded ICC profile converted to sRGB (what every network here was
    trained on and what a viewer shows): a wide-gamut (Adobe RGB, ProPhoto, Display P3) or CMYK photo
    read as if it were sRGB comes out washed out or shifted. Images without a profile, or already sRGB,
    are returned unchanged; a profile Little CMS cannot use is ignored, as before."""
    global _warned_no_cms
    icc = img.info.get("icc_profile")
    if not icc or img.mode not in _CMS_MODES:
        return img
    try:
        from PIL import ImageCms
    except ImportError:  # Pillow built without Little CMS
        if not _warned_no_cms:
            warnings.warn("Pillow has no ImageCms (Little CMS): ICC profiles are ignored", stacklevel=2)
            _warned_no_cms = True
        return img
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if ImageCms.getProfileDescription(source).strip().lower().startswith("srgb"):
            return img
        converted = ImageCms.profileToProfile(img, source, ImageCms.createProfile("sRGB"),
                                              outputMode=_CMS_MODES[img.mode])
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return img
    assert converted is not None
    converted.info = {k: v for k, v in img.info.items() if k != "icc_profile"}
    return converted


def to_rgb(img: Image.Image, label: str = "image") -> Image.Image:
    """Any PIL mode to 8-bit sRGB: EXIF rotation applied, an ICC profile converted (:func:`to_srgb`),
    alpha composited on white, 16-bit scaled. A float image holding NaN or infinity is refused: scaled
    by an infinite maximum it would load as black, without a word."""
    img = to_srgb(ImageOps.exif_transpose(img))
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if not np.isfinite(arr).all():
            raise InputError(f"{label}: holds NaN or infinite pixel values")
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


def pil_to_tensor(img: Image.Image, label: str = "image") -> torch.Tensor:
    arr = np.asarray(to_rgb(img, label), dtype=np.float32) / 255.0
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).unsqueeze(0).contiguous()


def load_image(source: ImageLike, *, name: str | None = None) -> torch.Tensor:  # type: ignore[valid-type]
    """Load a file path, PIL image, HxWx3 uint8/float array or tensor as a (1,3,H,W) [0,1] tensor."""
    if isinstance(source, torch.Tensor):
        t = source.detach().float()
        if not torch.isfinite(t).all():  # clamping keeps a NaN: it would come out black
            raise InputError("the image tensor holds NaN or infinite values")
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
        if not np.isfinite(arr).all():
            raise InputError("the image array holds NaN or infinite values")
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
    return pil_to_tensor(_open_checked(path, label), label)


def load_image_bytes(data: bytes, *, name: str = "upload") -> torch.Tensor:
    """Decode image bytes (uploads, stdin) with the same checks as files."""
    return pil_to_tensor(_open_checked(io.BytesIO(data), name), name)


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


#: errno values that mean the place written to is the problem, not the program
WRITE_ERRNOS = {errno.ENOSPC: "no space left on device", getattr(errno, "EDQUOT", -1): "disk quota exceeded",
                errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
                errno.EPERM: "permission denied", errno.EFBIG: "file too large for this file system"}


def write_failure(exc: BaseException, target: str | os.PathLike[str], note: str = "nothing was written"
                  ) -> WriteError | None:
    """A one-line :class:`WriteError` when ``exc``, or what it was raised from, is a full disk, a quota,
    a read-only file system or a denied permission (torch.save wraps the OSError of a full disk in a
    RuntimeError); None for anything else, which stays a bug to see."""
    seen: BaseException | None = exc
    for _ in range(8):  # a cause chain is short; bounded in case one loops
        if seen is None:
            break
        if isinstance(seen, OSError) and seen.errno in WRITE_ERRNOS:
            return WriteError(f"{target}: {WRITE_ERRNOS[seen.errno]}" + (f"; {note}" if note else ""))
        seen = seen.__cause__ or seen.__context__
    return None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]):
    """Yield a temp path beside ``path``; on success fsync and rename it over ``path``. On any failure
    the temp file is removed (no partial output); a full disk, quota, read-only file system or denied
    permission becomes one :class:`WriteError` line."""
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{target}: output directory {parent} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
    except PermissionError as exc:
        raise InputError(f"{target}: output directory is not writable") from exc
    except OSError as exc:  # the folder exists but takes no new file (e.g. /proc): the place, not a bug
        raise write_failure(exc, target) or InputError(
            f"{target}: cannot create a file in {parent} ({exc.strerror or exc})") from exc
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs should look like any other file
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        failure = write_failure(exc, target) if isinstance(exc, Exception) else None
        if failure is not None:
            raise failure from exc
        raise


def check_folder_target(path: str | os.PathLike[str]) -> None:
    """Before any work: an output folder's path must not be a file already."""
    if Path(path).exists() and not Path(path).is_dir():
        raise InputError(f"{path}: exists and is not a folder")


def make_folder(path: str | os.PathLike[str]) -> Path:
    """``path`` as a folder (parents too): a place that takes no new folder (a file in the way, /proc, a
    read-only disk) is one line naming it, like a file that cannot be written."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_failure(exc, folder) or InputError(
            f"{folder}: cannot make this folder ({exc.strerror or exc})") from exc
    return folder


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


def capped_size(h: int, w: int, max_size: int | None) -> tuple[int, int]:
    """(H, W) with the long side at most ``max_size`` (unchanged when it already is): the feed-forward
    methods' ``--max-size`` rule, which the video writer needs before the first frame is stylized."""
    return (h, w) if max_size is None or max(h, w) <= max_size else fit_size(h, w, max_size)


def resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Antialiased bicubic resize of a (N,3,H,W) tensor to (H, W), clamped to [0, 1]."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    shrinking = size[0] < image.shape[-2] or size[1] < image.shape[-1]
    out = F.interpolate(image, size=size, mode="bicubic", align_corners=False, antialias=shrinking)
    return out.clamp(0, 1)


def resize_long(image: torch.Tensor, long_side: int) -> torch.Tensor:
    return resize(image, fit_size(image.shape[-2], image.shape[-1], long_side))


def pad_to_min(image: torch.Tensor, min_side: int) -> torch.Tensor:
    """``image`` with its right and bottom edges repeated until both sides are at least ``min_side``
    (unchanged when they are): how a feed-forward network runs a 1x1 or a 3x2000 photo at all (its
    reflection padding and stride-2 stages need a few pixels a side); crop the output back to the
    input's size. Replicate, not reflect: reflection cannot pad by more than the side it mirrors."""
    h, w = image.shape[-2:]
    ph, pw = max(0, min_side - h), max(0, min_side - w)
    if not ph and not pw:
        return image
    return F.pad(image, (0, pw, 0, ph), mode="replicate")


def tile_to_min(image: torch.Tensor, min_side: int) -> torch.Tensor:
    """``image`` repeated side by side until both sides are at least ``min_side``: a thin or tiny
    painting keeps its colour and texture statistics (what Gram matrices and AdaIN read), which edge
    padding would dilute."""
    h, w = image.shape[-2:]
    rh, rw = -(-min_side // h), -(-min_side // w)
    return image if rh == 1 and rw == 1 else image.repeat(1, 1, rh, rw)


def require_finite(image: torch.Tensor, what: str) -> torch.Tensor:
    """``image`` itself, or one line when it holds NaN or infinite values: a broken model or a run that
    diverged would otherwise be written as an all-black picture with exit code 0."""
    if not bool(torch.isfinite(image).all()):
        raise ImpastoError(f"{what} produced NaN or infinite pixels (a broken model or a run that diverged); "
                           "nothing was written")
    return image


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """Image files in a folder (not recursive), sorted, by suffix."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"{root}: not a directory")
    return sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
