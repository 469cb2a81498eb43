"""The command line end to end on real images, and every bad input: one line on stderr, exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from impasto.cli import main

TINY = ["--size", "64", "--iterations", "4", "--quiet"]


def test_stylize_shared_images_writes_png_and_json(tmp_path, content_path, style_path, capsys):
    out = tmp_path / "out.png"
    code = main(["stylize", str(content_path), "--style", str(style_path), "-o", str(out), "--json", *TINY])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["output"] == str(out) and report["size"][1] == 64
    assert report["device"].split(":")[0] in ("cpu", "cuda")
    assert set(report["losses"]) >= {"content", "style", "tv", "total"}
    with Image.open(out) as img:
        assert img.size[0] == 64 and img.mode == "RGB"


def test_default_output_name_is_beside_the_input(tmp_path, content_path, style_path):
    local = tmp_path / "photo.jpg"
    local.write_bytes(content_path.read_bytes())
    assert main(["stylize", str(local), "-s", str(style_path), *TINY]) == 0
    assert (tmp_path / "photo_stylized.png").is_file()


def test_two_styles_with_weights_and_colour_preservation(tmp_path, content_path, shared_images):
    out = tmp_path / "blend.jpg"
    styles = ["-s", str(shared_images / "style" / "mosaic.jpg"), "-s", str(shared_images / "style" / "candy.jpg")]
    code = main(["stylize", str(content_path), *styles, "--style-weights", "0.7,0.3",
                 "--preserve-color", "histogram", "-o", str(out), *TINY])
    assert code == 0 and out.stat().st_size > 0


def test_console_script_writes_png_to_stdout(content_path, style_path):
    proc = subprocess.run([sys.executable, "-m", "impasto", "stylize", str(content_path), "-s", str(style_path),
                           "-o", "-", *TINY], capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.startswith(b"\x89PNG\r\n\x1a\n")


def _bad_files(tmp):
    corrupt = tmp / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0garbage")
    truncated = tmp / "trunc.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (80, 80, 3), dtype=np.uint8)).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:300])
    text = tmp / "notes.png"
    text.write_text("not an image")
    return {"missing": tmp / "missing.jpg", "corrupt": corrupt, "truncated": truncated, "text": text}


@pytest.mark.parametrize("which", ["missing", "corrupt", "truncated", "text"])
def test_bad_content_file_exit_2_one_line_no_output(tmp_path, style_path, capsys, which):
    bad = _bad_files(tmp_path)[which]
    out = tmp_path / "never.png"
    code = main(["stylize", str(bad), "-s", str(style_path), "-o", str(out), *TINY])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("impasto: error:") and "\n" not in err
    assert not out.exists()


def test_bomb_is_refused(tmp_path, style_path, capsys, monkeypatch):
    big = tmp_path / "big.png"
    Image.new("RGB", (500, 500)).save(big)
    monkeypatch.setenv("IMPASTO_MAX_PIXELS", "1000")
    assert main(["stylize", str(big), "-s", str(style_path), "-o", str(tmp_path / "o.png"), *TINY]) == 2
    assert "megapixels" in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("args, message", [
    (["--style-layers", "relu1_1,nope"], "unknown vgg16 layer"),
    (["-o", "/nonexistent-dir/x.png"], "does not exist"),
    (["-o", "out.xyz"], "unknown image suffix"),
    (["--style-weights", "0.5,0.5"], "but 2 style weight(s)"),
])
def test_bad_options_exit_2(content_path, style_path, capsys, args, message):
    code = main(["stylize", str(content_path), "-s", str(style_path), *TINY, *args])
    assert code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("args", [["--style-weight", "-3"], ["--iterations", "0"], ["--optimizer", "sgd"],
                                  ["--bogus-flag"]])
def test_nonsense_flags_exit_2_with_one_line(content_path, style_path, capsys, args):
    try:  # argparse refuses some (SystemExit), the stylization contract the others (exit code 2)
        code = main(["stylize", str(content_path), "-s", str(style_path), *args])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "error" in err


@pytest.mark.parametrize(("args", "message"), [
    (["--method", "fast", "--iterations", "5"], "fast has no option --iterations"),
    (["--method", "gatys", "--style-index", "1"], "gatys has no option --style-index"),
    (["--strength", "0.5", "--style-weight", "3"], "not both"),
    (["--size", "nan"], "--size got 'nan'; it needs an integer"),
    (["--method", "adain", "--work-size", "abc"], "--work-size got 'abc'; it needs an integer"),
    (["--method", "adain", "--refine", "-1"], "--refine must be >= 0"),
    (["--strength", "inf"], "--strength must be a finite number"),
    (["--style-weight", "3", "--layer-weights", "relu1_1=1,relu1_1=2"], "LAYER=NUMBER pairs, each layer once"),
    (["--style-weight", "3", "--layer-weights", "relu1_1=1e308"], "with numbers from 0 to 1e+12"),
])
def test_a_flag_the_method_does_not_have_or_a_bad_value_is_refused(content_path, style_path, capsys, args,
                                                                   message):
    code = main(["stylize", str(content_path), "-s", str(style_path), "--quiet", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and err.count("\n") == 0


def test_style_weights_whose_sum_overflows_are_refused_not_turned_into_a_black_image(content_path, style_path,
                                                                                     capsys):
    code = main(["stylize", str(content_path), "-s", str(style_path), "-s", str(style_path), "--method", "adain",
                 "--style-weights", "1e308,1e308", "--quiet"])
    assert code == 2 and "nor sum past the largest float" in capsys.readouterr().err


def test_a_negative_style_weight_gets_its_own_error_not_argparses_missing_argument(content_path, style_path, capsys):
    code = main(["stylize", str(content_path), "-s", str(style_path), "-s", str(style_path), "--method", "adain",
                 "--style-weights", "-1,2", "--quiet"])
    assert code == 2 and "style weights must be finite, >= 0" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--max-size", "--work-size", "--style-size", "--iterations", "--style-weight",
                                  "--layer-weights", "--style-mix", "-o", "--mask"])
def test_a_blank_flag_value_is_refused_not_read_as_the_default(content_path, style_path, capsys, flag):
    with pytest.raises(SystemExit) as refused:
        main(["stylize", str(content_path), "-s", str(style_path), flag, " "])
    err = capsys.readouterr().err.strip()
    assert refused.value.code == 2 and f"{flag}: needs a value" in err.replace("-o/--output", "-o")
    assert err.count("\n") == 0


def test_demo_runs_on_bundled_images(tmp_path, capsys):
    code = main(["demo", "-o", str(tmp_path), "--size", "64", "--iterations", "3", "--quiet", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and (tmp_path / "demo_sheet.png").is_file()
    assert Image.open(report["output"]).size == (64, 64)


def test_weights_list_json(capsys):
    assert main(["weights", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["weights"]}
    assert rows["vgg16-keras-offline"]["available"] is True
    assert rows["vgg16-keras-offline"]["preprocess"]["bgr"] is True


def test_progress_bar_follows_a_total_that_shrinks_when_a_coarse_scale_settles():
    from impasto.cli.common import ProgressBar
    from impasto.progress import Progress

    bar = ProgressBar(quiet=False, desc="t")
    bar(Progress("scale 1/2", 1, 300, {"total": 1.0}, 0.1))
    bar(Progress("scale 2/2", 40, 165, {"total": 0.5}, 0.2))
    assert bar.bar is not None and bar.bar.total == 165 and bar.bar.n == 40
    bar.close()


def test_output_equal_to_the_input_is_refused_unless_overwrite(tmp_path, capsys):
    from impasto import bundled

    photo = tmp_path / "photo.jpg"
    photo.write_bytes(bundled.photo("chelsea").read_bytes())
    before = photo.read_bytes()
    args = ["stylize", str(photo), "--method", "fast", "--max-size", "64", "-o", str(photo), "--quiet"]
    assert main(args) == 2 and "names an input file" in capsys.readouterr().err
    assert photo.read_bytes() == before
    assert main([*args, "--overwrite"]) == 0 and photo.read_bytes() != before


def test_iterations_one_means_one_per_scale():
    from impasto.optimize import scale_schedule

    assert [n for _, n in scale_schedule(1024, 1)] == [1, 1, 1]


def test_preview_file_follows_the_run_and_ends_as_an_image(tmp_path, content_path, style_path):
    from impasto import stylizer
    from impasto.cli.common import ProgressBar
    from impasto.cli.stylize import PreviewFile
    from impasto.io import load_image

    preview = PreviewFile(tmp_path / "live.png", ProgressBar(True))
    request = stylizer.StylizeRequest(load_image(content_path), [load_image(style_path)],
                                      stylizer.make_options("gatys", {"size": 64, "iterations": 6}))
    stylizer.stylize(request, preview, preview_every=2)
    assert preview.written == 4  # iterations 0, 2, 4 and the last: the first comes after one iteration
    out = tmp_path / "out.png"
    assert main(["stylize", str(content_path), "-s", str(style_path), "-o", str(out), "--preview",
                 str(tmp_path / "p.jpg"), *TINY]) == 0
    with Image.open(tmp_path / "p.jpg") as p, Image.open(out) as o:
        assert p.size == o.size
    assert main(["stylize", str(content_path), "-s", str(style_path), "-o", str(out), "--preview-every", "2",
                 *TINY]) == 2  # without --preview it would do nothing


def test_preview_of_a_folder_or_into_a_missing_folder_is_refused(tmp_path, content_path, style_path, capsys):
    for target, message in ((tmp_path, "not a folder"), (content_path, "does not exist")):
        preview = tmp_path / "p.png" if target == tmp_path else tmp_path / "nowhere" / "p.png"
        assert main(["stylize", str(target), "-s", str(style_path), "--preview", str(preview), *TINY]) == 2
        assert message in capsys.readouterr().err


def test_a_gatys_run_does_not_import_torch_dynamo(content_path, style_path):
    """torch.optim.Optimizer's constructor imports torch._dynamo (1.5 s here): the default L-BFGS avoids it,
    which is most of the time to a CLI run's first preview."""
    code = ("import sys; from impasto import optimize; "
            f"optimize.stylize({str(content_path)!r}, {str(style_path)!r}, size=32, iterations=2); "
            "print('torch._dynamo' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "False"
