"""Images that ship inside the package (public-domain paintings, scikit-image photos): see assets/README.md."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from impasto.errors import InputError

DEMO_CONTENT = "astronaut"
DEMO_STYLE = "matisse_woman_with_hat"


def _folder(kind: str) -> Path:
    return Path(str(resources.files("impasto").joinpath("assets", kind)))


def styles() -> dict[str, Path]:
    """Bundled paintings by short name, e.g. ``{'picabia_udnie': Path(...)}``."""
    return {p.stem: p for p in sorted(_folder("styles").glob("*.jpg"))}


def photos() -> dict[str, Path]:
    return {p.stem: p for p in sorted(_folder("photos").glob("*.jpg"))}


def _pick(kind: str, name: str, found: dict[str, Path]) -> Path:
    if name not in found:
        raise InputError(f"no bundled {kind} {name!r}; bundled: {', '.join(found) or 'none'}")
    return found[name]


def style(name: str) -> Path:
    return _pick("style", name, styles())


def photo(name: str) -> Path:
    return _pick("photo", name, photos())


def models() -> dict[str, Path]:
    """Trained models shipped in the package (fp16 safetensors), by name."""
    return {p.stem: p for p in sorted(_folder("models").glob("*.safetensors"))}


def model(name: str) -> Path:
    return _pick("model", name, models())
