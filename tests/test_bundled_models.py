"""The trained models shipped in the package load, are small fp16 files, and stylize real photos."""

from __future__ import annotations

import json

import pytest
import torch

from impasto import bundled
from impasto.cli import main
from impasto.models import files


@pytest.mark.parametrize("name, kind", [("fast4", "fast-style"), ("adain", "adain-decoder")])
def test_bundled_model_is_small_fp16_with_its_recipe(name, kind):
    path = bundled.model(name)
    assert path.stat().st_size < 20e6
    found, meta = files.read_meta(path)
    assert found == kind and meta["steps"] >= 200 and meta["backbone"] == "vgg16-keras-offline"
    tensors, _ = files.load(path, kind, dtype=torch.float16)
    assert all(t.dtype == torch.float16 for t in tensors.values())


def test_default_fast_model_stylizes_a_real_photo_with_each_style(content_path, tmp_path, capsys):
    _, meta = files.read_meta(bundled.model("fast4"))
    assert meta["styles"] == ["picabia_udnie", "matisse_woman_with_hat", "kandinsky_in_grey",
                              "leger_contrast_of_forms"]
    from impasto.io import load_image, resize_long
    from impasto.methods import stylize_fast
    from impasto.options import make_options

    x = resize_long(load_image(content_path), 128)
    outs = [stylize_fast(x, make_options("fast", {"style_index": i}))[0] for i in range(4)]
    for i in range(4):
        assert (outs[i] - x).abs().mean() > 0.03  # it changes the photo
        for j in range(i):
            assert (outs[i] - outs[j]).abs().mean() > 0.02  # and each style differently
    out = tmp_path / "f.png"
    assert main(["stylize", str(content_path), "--method", "fast", "-o", str(out), "--json", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["model"].endswith("fast4.safetensors")


def test_default_adain_decoder_takes_a_style_it_never_saw(content_path, shared_images, tmp_path):
    out = tmp_path / "a.png"
    code = main(["stylize", str(content_path), "--method", "adain", "-s", str(shared_images / "style" / "candy.jpg"),
                 "-o", str(out), "--quiet"])
    assert code == 0 and out.stat().st_size > 0


def test_bundled_monet_cyclegan_paints_a_real_photo_and_keeps_its_layout(content_path, tmp_path, capsys):
    from impasto.io import load_image, resize_long
    from impasto.metrics import ssim

    path = bundled.model("monet")
    kind, meta = files.read_meta(path)
    assert kind == "cyclegan" and path.stat().st_size < 20e6 and meta["steps"] >= 1000
    assert meta["names"] == ["photo", "monet"] and "kmonet_" in json.dumps(meta["data"])
    assert "kid_translated_vs_paintings" in meta["benchmark"]  # how it scored ships with it
    out = tmp_path / "m.png"
    assert main(["translate", str(content_path), "--model", "monet", "--size", "256", "-o", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["to"] == "monet"
    y, x = load_image(out), resize_long(load_image(content_path), 256)
    assert y.shape == x.shape
    assert (y - x).abs().mean() > 0.03  # it repaints the photo
    assert ssim(y, x) > 0.2  # and keeps where things are


def test_shipping_a_model_records_provenance_and_refuses_keys_its_loader_reads(tmp_path):
    """benchmarks/ship_model.py --set adds where a run ran and on what; a key the loader reads (slim,
    wct_levels, ...) would write a bundled file that no longer loads, so it is refused and nothing is left."""
    import importlib.util
    from pathlib import Path

    from impasto.models import adain

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "ship_model.py"
    spec = importlib.util.spec_from_file_location("ship_model", script)
    ship_model = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ship_model)
    dec = adain.SkipDecoder(4)
    src = adain.save_decoder(tmp_path / "trained.safetensors", dec,
                             {"backbone": "vgg16-keras-offline", "steps": 10})
    models = tmp_path / "models"
    models.mkdir()
    dest = ship_model.ship(src, "mine", None, [], models=models, notes={"trained_on": "an H100"})
    kind, meta = files.read_meta(dest)
    assert kind == adain.KIND and meta["trained_on"] == "an H100" and meta["steps"] == 10
    from safetensors import safe_open

    with safe_open(str(dest), framework="pt") as fh:
        assert all(fh.get_tensor(k).dtype == torch.float16 for k in fh.keys())  # noqa: SIM118
    with pytest.raises(SystemExit, match="'slim'"):
        ship_model.ship(src, "broken", None, [], models=models, notes={"slim": "2"})
    assert not (models / "broken.safetensors").exists()
