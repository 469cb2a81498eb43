"""Fast feed-forward styles: training lowers the loss, inference, style mixing, ONNX parity, model errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from impasto import bundled
from impasto.cli import main
from impasto.models.transformer import TransformerNet
from impasto.train.loop import read_log


def _opts(model, **given):
    from impasto.options import make_options

    return make_options("fast", {"model": str(model), "precision": "fp32", **given})


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fast")
    content = folder / "content"
    content.mkdir()
    for name, path in bundled.photos().items():
        (content / f"{name}.jpg").write_bytes(path.read_bytes())
    out = folder / "two.safetensors"
    code = main(["train", "fast-style", "-s", str(bundled.style("picabia_udnie")), "-s",
                 str(bundled.style("kandinsky_in_grey")), "--content-dir", str(content), "--val-dir", str(content),
                 "--size", "48", "--style-size", "96", "--batch", "2", "--steps", "30", "--save-every", "15",
                 "--width", "8", "--lr", "0.01", "--log-every", "1", "--out", str(out), "--quiet"])
    assert code == 0
    return out


def test_training_lowers_the_loss_and_writes_plot_samples_and_metadata(tiny_model):
    from impasto.models import files

    rows = [r for r in read_log(tiny_model.with_name("two_run") / "log.jsonl") if "val" not in r]
    first, last = sum(r["total"] for r in rows[:5]) / 5, sum(r["total"] for r in rows[-5:]) / 5
    assert last < 0.8 * first, (first, last)
    run = tiny_model.with_name("two_run")
    assert (run / "loss.png").is_file() and list((run / "samples").glob("*.png"))
    assert any("val" in r for r in read_log(run / "log.jsonl"))
    kind, meta = files.read_meta(tiny_model)
    assert kind == "fast-style" and meta["styles"] == ["picabia_udnie", "kandinsky_in_grey"] and meta["steps"] == 30
    assert tiny_model.stat().st_size < 20e6


def test_any_size_and_style_mix_between_styles(tiny_model):
    from impasto.methods import stylize_fast

    x = torch.rand(1, 3, 37, 53)
    a, _ = stylize_fast(x, _opts(tiny_model, style_index=0))
    b, _ = stylize_fast(x, _opts(tiny_model, style_index=1))
    m, info = stylize_fast(x, _opts(tiny_model, style_mix="0:1,1:1"))
    assert a.shape == x.shape and not torch.allclose(a, b)
    assert info["style"] == [0.5, 0.5]
    assert (m - a).abs().mean() > 0 and (m - b).abs().mean() > 0


def test_strength_zero_returns_the_content(tiny_model):
    from impasto.methods import stylize_fast

    x = torch.rand(1, 3, 32, 32)
    y, _ = stylize_fast(x, _opts(tiny_model, strength=0.0))
    assert torch.allclose(y, x, atol=1e-6)


def test_cli_fast_stylize_real_image(tiny_model, tmp_path, content_path, capsys):
    out = tmp_path / "f.png"
    assert main(["stylize", str(content_path), "--method", "fast", "--model", str(tiny_model), "--style-index", "1",
                 "-o", str(out), "--json", "--quiet"]) == 0
    report = json.loads(capsys.readouterr().out)
    with Image.open(content_path) as c, Image.open(out) as o:
        assert o.size == c.size  # full resolution, no downscaled pass
    assert report["method"] == "fast"


def test_onnx_export_matches_torch_within_one_level(tiny_model, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", "onnx", str(tiny_model), "-o", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["max_abs_diff"] < 1 / 255


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing.safetensors", "no such model file"),
    (lambda p: (p / "bad.safetensors").write_bytes(b"\x00" * 64) and p / "bad.safetensors", "not an impasto model"),
])
def test_missing_or_corrupt_model_exit_2(tmp_path, content_path, capsys, make, message):
    model = make(tmp_path)
    code = main(["stylize", str(content_path), "--method", "fast", "--model", str(model), "-o",
                 str(tmp_path / "o.png")])
    assert code == 2 and message in capsys.readouterr().err and not (tmp_path / "o.png").exists()


def test_model_of_another_kind_is_refused(tmp_path):
    from impasto.errors import ModelFileError
    from impasto.methods import stylize_fast
    from impasto.models import files

    other = files.save(tmp_path / "x.safetensors", "cyclegan", {"w": torch.zeros(2)}, {})
    with pytest.raises(ModelFileError, match="is a 'cyclegan' model"):
        stylize_fast(torch.rand(1, 3, 8, 8), _opts(other))


def test_style_index_out_of_range_and_bad_mix(tiny_model, content_path, capsys):
    assert main(["stylize", str(content_path), "--method", "fast", "--model", str(tiny_model),
                 "--style-index", "5"]) == 2
    assert "out of range" in capsys.readouterr().err
    assert main(["stylize", str(content_path), "--method", "fast", "--model", str(tiny_model),
                 "--style-mix", "0:x"]) == 2


def test_conditional_norm_blends_parameters_linearly():
    net = TransformerNet(n_styles=3, width=4, n_residual=1)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.1)
    norm = net.down[0].norm
    x = torch.randn(1, 4, 8, 8)
    half = norm(x, torch.tensor([[0.5, 0.5, 0.0]]))
    ends = 0.5 * norm(x, torch.tensor([[1.0, 0, 0]])) + 0.5 * norm(x, torch.tensor([[0, 1.0, 0]]))
    assert torch.allclose(half, ends, atol=1e-6)


def test_folder_batch_skips_bad_files_and_resumes(tiny_model, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    for name in ["chelsea", "coffee"]:
        (src / f"{name}.jpg").write_bytes(bundled.photo(name).read_bytes())
    (src / "broken.png").write_bytes(b"nope")
    out = tmp_path / "out"
    args = ["stylize", str(src), "--method", "fast", "--model", str(tiny_model), "-o", str(out), "--json", "--quiet"]
    assert main(args) == 2  # the others written, the bad file reported, the failure in the exit code
    first = json.loads(capsys.readouterr().out)
    assert len(first["written"]) == 2 and len(first["failed"]) == 1
    assert main(args) == 2
    second = json.loads(capsys.readouterr().out)
    assert second["written"] == [] and len(second["already_done"]) == 2


def test_folder_batch_rerun_with_other_settings_or_into_its_input_folder_is_refused(tiny_model, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    (src / "chelsea.jpg").write_bytes(bundled.photo("chelsea").read_bytes())
    out = tmp_path / "out"
    base = ["stylize", str(src), "--method", "fast", "--model", str(tiny_model), "--max-size", "48", "--quiet"]
    assert main([*base, "-o", str(out)]) == 0
    made = (out / "chelsea_stylized.png").read_bytes()
    capsys.readouterr()
    # a resume keeps what the same settings made; other settings would be reported as done yet are not theirs
    assert main([*base, "--style-index", "1", "-o", str(out)]) == 2
    assert "other settings" in capsys.readouterr().err
    assert (out / "chelsea_stylized.png").read_bytes() == made
    # the same settings spelled otherwise (the declared default strength given explicitly) resume
    assert main([*base, "--strength", "1.0", "-o", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["already_done"] == [str(out / "chelsea_stylized.png")]
    # a folder the other batch left empty (every file failed, or its outputs were deleted) takes a new one
    (out / "chelsea_stylized.png").unlink()
    assert main([*base, "--style-index", "1", "-o", str(out)]) == 0 and (out / "chelsea_stylized.png").is_file()
    capsys.readouterr()
    # outputs with no record of how they were made (an older impasto) are not taken as this batch's
    (out / ".impasto_batch.json").unlink()
    assert main([*base, "-o", str(out)]) == 2 and "no .impasto_batch.json" in capsys.readouterr().err
    # into its own input folder, every run would stylize the last run's outputs again
    assert main([*base, "-o", str(src)]) == 2
    assert "input folder" in capsys.readouterr().err and sorted(p.name for p in src.iterdir()) == ["chelsea.jpg"]
