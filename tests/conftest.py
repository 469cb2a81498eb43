"""Shared fixtures: the sample images beside the repo, tiny images made on the fly, a private cache."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "images"

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def private_impasto_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty data directory: nothing a test records (the feedback store, the web
    server's results) ever lands in the real home, and no test sees another's records."""
    home = tmp_path_factory.mktemp("impasto_home")
    monkeypatch.setenv("IMPASTO_HOME", str(home))
    monkeypatch.delenv("IMPASTO_NO_RECORD", raising=False)
    return home


@pytest.fixture(scope="session")
def shared_images() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"sample images not found at {SHARED} (CI places shared/ beside the clone)")
    return SHARED


@pytest.fixture(scope="session")
def content_path(shared_images: Path) -> Path:
    return shared_images / "content" / "golden_gate.jpg"


@pytest.fixture(scope="session")
def style_path(shared_images: Path) -> Path:
    return shared_images / "style" / "udnie.jpg"


@pytest.fixture(scope="session")
def small_pair() -> tuple[torch.Tensor, torch.Tensor]:
    """A bundled photo and painting at 64 px (always available, ships in the package)."""
    from impasto import bundled
    from impasto.io import load_image, resize_long

    content = resize_long(load_image(bundled.photo("chelsea")), 64)
    style = resize_long(load_image(bundled.style("picabia_udnie")), 64)
    return content, style
