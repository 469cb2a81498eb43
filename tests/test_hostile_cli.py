"""A second hostile pass over the command line (session 15): places that take no file, empty layer lists,
sizes and counts past what memory holds, outputs that would replace an input, a painting given to a
method that ignores it, bundled names, malformed CSVs and settings. Each is one line and exit 2 before
any work, or simply works; no input file is ever replaced."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from impasto import bundled, stylizer
from impasto.cli import main
from impasto.errors import InputError
from impasto.models import cyclegan, dcgan, files


def _one_line(err: str) -> str:
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err[-2000:]
    return lines[0]


def _refused(argv: list[str], capsys) -> str:
    """exit 2 and one line, whether argparse (SystemExit) or the command refused it."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    assert code == 2, argv
    return _one_line(capsys.readouterr().err)


@pytest.fixture(scope="module")
def dcgan_model(tmp_path_factory) -> Path:
    return files.save(tmp_path_factory.mktemp("dc") / "g.safetensors", dcgan.KIND,
                      files.flat({"G": dcgan.Generator(32, 8, 4)}), {"size": 32, "nz": 8, "ngf": 4})


@pytest.fixture(scope="module")
def cyclegan_model(tmp_path_factory) -> Path:
    return files.save(tmp_path_factory.mktemp("cg") / "c.safetensors", cyclegan.KIND,
                      cyclegan.CycleGenerators(4, 1).state_dict(), {"ngf": 4, "n_blocks": 1, "names": ["A", "B"]})


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc, a folder that takes no new file")
def test_an_output_place_that_takes_no_file_is_one_line(tmp_path, capsys):
    photo = bundled.photo("chelsea")
    line = _refused(["stylize", str(photo), "--method", "fast", "--max-size", "32", "--no-record", "-q",
                     "-o", "/proc/impasto_out.png"], capsys)
    assert "/proc/impasto_out.png" in line
    line = _refused(["stylize", str(photo), "--method", "fast", "--max-size", "32", "-q",
                     "--db", "/proc/impasto.sqlite3", "-o", str(tmp_path / "o.png")], capsys)
    assert "/proc/impasto.sqlite3" in line and not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("field", ["content_layers", "style_layers"])
@pytest.mark.parametrize("value", ["", ",", " , "])
def test_an_empty_layer_list_is_refused_before_any_work(field, value):
    with pytest.raises(InputError, match="at least one VGG layer"):
        stylizer.make_options("gatys", {field: value})


def test_both_weights_zero_and_non_finite_style_mix_weights_are_refused(capsys):
    with pytest.raises(InputError, match="both 0"):
        stylizer.make_options("gatys", {"content_weight": "0", "style_weight": "0"})
    from impasto.methods import parse_style_mix

    for mix in ("0:nan", "0:inf,1:1", "0:1e308,1:1e308"):
        with pytest.raises(InputError, match="--style-mix"):
            parse_style_mix(mix, 2)


def test_sizes_counts_seeds_tiles_and_opsets_past_their_limits_are_refused(tmp_path, dcgan_model, cyclegan_model,
                                                                           capsys):
    photo, out = str(bundled.photo("chelsea")), str(tmp_path / "o.png")
    cases = [
        ["translate", photo, "--model", str(cyclegan_model), "-o", out, "--size", "100000"],
        ["translate", photo, "--model", str(cyclegan_model), "-o", out, "--tile", "1"],
        ["evaluate", "--content", str(tmp_path), "--style", str(tmp_path), "--stylized", str(tmp_path),
         "--size", "100000"],
        ["compare", photo, "-s", photo, "--eval-size", "100000"],
        ["generate", "--model", str(dcgan_model), "-o", out, "--cell", "100000"],
        ["generate", "--model", str(dcgan_model), "-o", out, "-n", "100000000"],
        ["generate", "--model", str(dcgan_model), "-o", out, "--seed", "99999999999999999999999"],
        ["generate", "--model", str(dcgan_model), "-o", out, "--seed", "-1"],
        ["export", "onnx", str(bundled.model("fast4")), "-o", str(tmp_path / "f.onnx"), "--opset", "999"],
    ]
    for argv in cases:
        assert "expected a number from" in _refused(argv, capsys)
    assert not list(tmp_path.iterdir())


def test_a_grid_over_the_pixel_limit_is_refused(tmp_path, dcgan_model, capsys):
    line = _refused(["generate", "--model", str(dcgan_model), "-o", str(tmp_path / "g.png"), "-n", "4096",
                     "--cell", "1024", "-q"], capsys)
    assert "megapixels" in line and not (tmp_path / "g.png").exists()


def test_preview_or_translation_onto_an_input_is_refused_and_the_input_kept(tmp_path, cyclegan_model, capsys):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(bundled.photo("chelsea").read_bytes())
    painting = tmp_path / "painting.jpg"
    painting.write_bytes(bundled.style("picabia_udnie").read_bytes())
    before = photo.read_bytes(), painting.read_bytes()
    base = ["stylize", str(photo), "-s", str(painting), "--size", "32", "--iterations", "1", "--no-record", "-q",
            "-o", str(tmp_path / "o.png")]
    assert "--preview names an input" in _refused([*base, "--preview", str(photo)], capsys)
    assert "--preview names an input" in _refused([*base, "--preview", str(painting)], capsys)
    assert "-o names an input" in _refused(["translate", str(photo), "--model", str(cyclegan_model), "-q",
                                            "-o", str(photo)], capsys)
    assert (photo.read_bytes(), painting.read_bytes()) == before
    assert main(["translate", str(photo), "--model", str(cyclegan_model), "-q", "-o", str(photo), "--overwrite"]) == 0
    assert photo.read_bytes() != before[0]


def test_a_painting_given_to_the_trained_network_method_is_refused(tmp_path, capsys):
    line = _refused(["stylize", str(bundled.photo("chelsea")), "--method", "fast", "-s", str(tmp_path / "nope.jpg"),
                     "--no-record", "-q", "-o", str(tmp_path / "o.png")], capsys)
    assert "takes no --style" in line and not (tmp_path / "o.png").exists()


def test_a_bundled_model_name_works_wherever_a_model_file_does(tmp_path, capsys):
    out = tmp_path / "o.png"
    assert main(["stylize", str(bundled.photo("chelsea")), "--method", "fast", "--model", "fast4", "--max-size", "32",
                 "--no-record", "-q", "-o", str(out)]) == 0 and out.is_file()
    assert files.model_file("fast4") == bundled.model("fast4")
    assert files.model_file(tmp_path / "fast4") == tmp_path / "fast4"  # a path is never a bundled name
    line = _refused(["generate", "--model", "monet", "-o", str(tmp_path / "g.png")], capsys)
    assert "DCGAN or VAE" in line


def test_output_paths_that_are_folders_or_under_a_file_say_so(tmp_path, capsys):
    photo = str(bundled.photo("chelsea"))
    base = ["stylize", photo, "--method", "fast", "--max-size", "32", "--no-record", "-q", "-o"]
    assert "is a directory" in _refused([*base, str(tmp_path)], capsys)
    assert "is a file, not a directory" in _refused([*base, os.path.join(photo, "x.png")], capsys)


@pytest.mark.parametrize("text, says", [
    ("content,style,stylized\n", "no rows"),
    ('content,style,stylized\n"unterminated,s.jpg\n', "line 2"),
    ("content,style,stylized\na.jpg,,z.jpg\n", "line 2"),
    ("a,b\n1,2\n", "header"),
])
def test_a_bad_pairs_csv_is_one_line(tmp_path, text, says, capsys):
    for name in ("c", "s", "z"):
        (tmp_path / name).mkdir()
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(text)
    line = _refused(["evaluate", "--content", str(tmp_path / "c"), "--style", str(tmp_path / "s"), "--stylized",
                     str(tmp_path / "z"), "--pairs", str(pairs)], capsys)
    assert says in line


def test_evaluate_into_a_file_compare_with_no_paintings_or_a_bare_setting_name_are_refused(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    report = tmp_path / "report.txt"
    report.write_text("keep me")
    photo = str(bundled.photo("chelsea"))
    assert "not a folder" in _refused(["evaluate", "--content", str(tmp_path), "--style", str(tmp_path),
                                       "--stylized", str(tmp_path), "-o", str(report)], capsys)
    assert report.read_text() == "keep me"
    assert "is the --content folder" in _refused(["evaluate", "--content", str(tmp_path), "--style", str(tmp_path /
                                                  "empty"), "--stylized", str(tmp_path / "empty"), "-o",
                                                  str(tmp_path)], capsys)
    assert "no style images" in _refused(["compare", photo, "-s", str(tmp_path / "empty"), "--method", "adain",
                                          "--no-record", "-o", str(tmp_path / "cmp")], capsys)
    assert "NAME:method=" in _refused(["compare", photo, "-s", photo, "--setting", "garbage", "--no-record",
                                       "-o", str(tmp_path / "cmp")], capsys)
    assert not (tmp_path / "cmp").exists()


def test_web_form_without_a_size_gets_the_servers_limit(monkeypatch):
    from impasto.web.app import Limits, web_options

    limits = Limits(max_size=128)
    assert web_options("gatys", {}, limits).size == 128  # the declared 512 is over this server's limit
    assert web_options("adain", {}, limits).max_size == 128
    assert web_options("gatys", {"size": "96"}, limits).size == 96
    from fastapi import HTTPException

    with pytest.raises(HTTPException):
        web_options("gatys", {"size": "256"}, limits)


def test_video_refuses_a_folder_by_name(tmp_path, capsys):
    line = _refused(["video", str(tmp_path), "--method", "fast", "-o", str(tmp_path / "v.mp4"), "-q"], capsys)
    assert "is a folder" in line and not (tmp_path / "v.mp4").exists()


def test_no_record_keeps_the_run_out_of_a_damaged_store(tmp_path, capsys):
    db = tmp_path / "impasto.sqlite3"
    db.write_bytes(b"not a database at all " * 200)
    out = tmp_path / "o.png"
    base = ["stylize", str(bundled.photo("chelsea")), "--method", "fast", "--max-size", "32", "-q", "--db", str(db),
            "-o", str(out)]
    assert "database" in _refused(base, capsys) and not out.exists()  # recording: the store is checked first
    assert main([*base, "--no-record"]) == 0 and out.is_file()  # what the store's own errors suggest works
    assert "--strength auto" in _refused([*base, "--no-record", "--strength", "auto"], capsys)
    assert db.read_bytes() == b"not a database at all " * 200


def test_an_empty_value_for_an_option_that_needs_one_is_refused():
    for method, field in (("gatys", "size"), ("gatys", "tv_weight"), ("fast", "strength"), ("adain", "strength")):
        for value in ("", " ", "none"):
            with pytest.raises(InputError, match="needs a value"):
                stylizer.make_options(method, {field: value})
    assert stylizer.make_options("fast", {"max_size": ""}).max_size is None  # optional: empty means unset


def test_web_form_with_a_blank_size_gets_the_servers_limit():
    from fastapi import HTTPException

    from impasto.web.app import Limits, web_options

    limits = Limits(max_size=128)
    assert web_options("gatys", {"size": ""}, limits).size == 128
    assert web_options("adain", {"size": " "}, limits).max_size == 128
    with pytest.raises(HTTPException):
        web_options("gatys", {"size": " "}, limits)  # gatys' size cannot be unset


def test_generate_refuses_a_grid_too_wide_for_memory_before_sampling(tmp_path, dcgan_model, monkeypatch, capsys):
    from impasto import generate

    monkeypatch.setattr(generate, "sample", lambda *a, **k: pytest.fail("sampled before the check"))
    line = _refused(["generate", "--model", str(dcgan_model), "-n", "4096", "--columns", "4096", "--cell", "1024",
                     "-o", str(tmp_path / "g.png")], capsys)
    assert "megapixels" in line


def test_a_mask_or_a_video_input_is_never_replaced(tmp_path, shared_images, capsys):
    mask = tmp_path / "mask.png"
    mask.write_bytes(bundled.style("picabia_udnie").read_bytes())
    before = mask.read_bytes()
    photo, painting = str(bundled.photo("chelsea")), str(bundled.style("picabia_udnie"))
    assert "-o names an input" in _refused(["stylize", photo, "--method", "adain", "-s", painting, "-s", painting,
                                            "--mask", str(mask), "--no-record", "-q", "-o", str(mask)], capsys)
    assert mask.read_bytes() == before
    video = tmp_path / "clip.mp4"
    video.write_bytes((shared_images / "content" / "cutBunny.mp4").read_bytes())
    line = _refused(["video", str(video), "--method", "fast", "--no-record", "-q", "-o", str(video)], capsys)
    assert "input video" in line and video.read_bytes() == (shared_images / "content" / "cutBunny.mp4").read_bytes()


def test_pairs_csv_from_a_spreadsheet_and_line_numbers_after_blank_lines(tmp_path, capsys):
    for name in ("c", "s", "z"):
        (tmp_path / name).mkdir()
    pairs = tmp_path / "pairs.csv"
    pairs.write_bytes("\ufeffcontent,style,stylized\n\na.jpg,,z.jpg\n".encode())
    line = _refused(["evaluate", "--content", str(tmp_path / "c"), "--style", str(tmp_path / "s"), "--stylized",
                     str(tmp_path / "z"), "--pairs", str(pairs)], capsys)
    assert "line 3" in line  # the header was read through the byte-order mark


def test_a_local_folder_that_hides_a_bundled_cyclegan_is_named(tmp_path, monkeypatch, capsys):
    from impasto.translate import bundled_cyclegans

    name = bundled_cyclegans()[0]
    (tmp_path / name).mkdir()  # e.g. the painting folder a user trained from
    monkeypatch.chdir(tmp_path)
    line = _refused(["translate", str(bundled.photo("chelsea")), "--model", name, "-o", str(tmp_path / "o.png")],
                    capsys)
    assert "hides the bundled CycleGAN" in line


@pytest.mark.parametrize("error", [
    RuntimeError("[enforce fail at alloc_cpu.cpp:121] data. DefaultCPUAllocator: can't allocate memory: you tried "
                 "to allocate 17179869184 bytes. Error code 12 (Cannot allocate memory)"),
    MemoryError(),
])
def test_running_out_of_memory_is_one_line_and_exit_2_but_a_bug_keeps_its_traceback(tmp_path, monkeypatch, capsys,
                                                                                     error):
    from impasto import methods

    def exhausted(*args, **kwargs):
        raise error

    monkeypatch.setattr(methods, "stylize_adain", exhausted)
    photo, painting = str(bundled.photo("chelsea")), str(bundled.style("picabia_udnie"))
    line = ["stylize", photo, "-s", painting, "--method", "adain", "-o", str(tmp_path / "o.png"), "--quiet"]
    assert main(line) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("impasto: error: out of memory") and "ask for less" in err and err.count("\n") == 0
    assert ("16.0 GiB" in err) == isinstance(error, RuntimeError)
    monkeypatch.setattr(methods, "stylize_adain", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("a bug")))
    with pytest.raises(RuntimeError, match="a bug"):
        main(line)
