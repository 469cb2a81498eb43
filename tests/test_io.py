"""Loading every kind of image and refusing bad ones; atomic saves."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from impasto.errors import InputError
from impasto.io import load_image, resize, save_image


def _save(img: Image.Image, path, **kw):
    img.save(path, **kw)
    return path


def test_cmyk_16bit_alpha_grey_palette_become_rgb(tmp_path):
    rgb = Image.new("RGB", (10, 6), (200, 30, 60))
    paths = [
        _save(rgb.convert("CMYK"), tmp_path / "cmyk.jpg"),
        _save(Image.fromarray(np.full((6, 10), 65535 // 2, dtype=np.uint16)), tmp_path / "g16.png"),
        _save(Image.new("RGBA", (10, 6), (200, 30, 60, 0)), tmp_path / "alpha.png"),
        _save(rgb.convert("L"), tmp_path / "grey.png"),
        _save(rgb.convert("P"), tmp_path / "pal.png"),
    ]
    for p in paths:
        t = load_image(p)
        assert t.shape == (1, 3, 6, 10) and t.dtype == torch.float32 and t.min() >= 0 and t.max() <= 1
    assert load_image(paths[1]).mean().item() == pytest.approx(0.5, abs=0.01)
    assert load_image(paths[2]).min().item() == 1.0  # transparent -> white


def test_exif_rotation_is_honoured(tmp_path):
    img = Image.new("RGB", (20, 10), "red")
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 on display
    path = tmp_path / "rot.jpg"
    img.save(path, exif=exif)
    assert load_image(path).shape[-2:] == (20, 10)


@pytest.mark.parametrize("make, message", [
    (lambda p: p, "no such file"),
    (lambda p: (p.write_bytes(b"hello, not an image") and p), "not an image"),
])
def test_missing_and_non_image_files(tmp_path, make, message):
    with pytest.raises(InputError, match=message):
        load_image(make(tmp_path / "x.png"))


def test_truncated_image_is_refused(tmp_path):
    path = tmp_path / "t.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="corrupt or truncated"):
        load_image(path)


def test_decompression_bomb_is_refused_before_decoding(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.new("RGB", (400, 300)).save(path)
    monkeypatch.setenv("IMPASTO_MAX_PIXELS", "10000")
    with pytest.raises(InputError, match="megapixels"):
        load_image(path)


@pytest.mark.parametrize("bad", [float("inf"), float("nan")])
def test_a_float_image_with_nan_or_infinity_is_refused_not_loaded_black(tmp_path, bad):
    values = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    Image.fromarray(values, mode="F").save(tmp_path / "ok.tif")
    assert load_image(tmp_path / "ok.tif").mean() > 0.3  # a finite float image loads as before
    values[2, 3] = bad
    Image.fromarray(values, mode="F").save(tmp_path / "bad.tif")
    with pytest.raises(InputError, match=r"bad\.tif: holds NaN or infinite pixel values"):
        load_image(tmp_path / "bad.tif")
    with pytest.raises(InputError, match="NaN or infinite"):
        load_image(np.repeat(values[..., None], 3, axis=2))
    with pytest.raises(InputError, match="NaN or infinite"):
        load_image(torch.from_numpy(values).expand(3, -1, -1))


def test_directory_is_not_an_image(tmp_path):
    with pytest.raises(InputError, match="directory"):
        load_image(tmp_path)


def test_save_is_atomic_and_leaves_no_temp_on_failure(tmp_path, monkeypatch):
    img = torch.rand(1, 3, 8, 8)
    out = save_image(img, tmp_path / "ok.png")
    assert load_image(out).shape == (1, 3, 8, 8)
    assert oct(out.stat().st_mode & 0o777) != oct(0o600)

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(OSError):
        save_image(img, tmp_path / "bad.png")
    assert sorted(os.listdir(tmp_path)) == ["ok.png"]


def test_save_refuses_unknown_suffix_and_missing_dir(tmp_path):
    with pytest.raises(InputError, match="suffix"):
        save_image(torch.rand(1, 3, 4, 4), tmp_path / "x.xyz")
    with pytest.raises(InputError, match="does not exist"):
        save_image(torch.rand(1, 3, 4, 4), tmp_path / "nope" / "x.png")


def test_resize_keeps_range_and_shape():
    x = torch.rand(1, 3, 50, 80)
    y = resize(x, (25, 40))
    assert y.shape == (1, 3, 25, 40) and y.min() >= 0 and y.max() <= 1
