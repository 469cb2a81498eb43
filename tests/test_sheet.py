"""``impasto sheet``: one photo in many styles as a labelled contact sheet; bad style files skipped."""

from __future__ import annotations

import json

from impasto import bundled
from impasto.cli import main
from impasto.io import load_image, save_image


def test_sheet_of_a_style_folder_skips_a_bad_file(tmp_path, capsys):
    styles = tmp_path / "styles"
    styles.mkdir()
    for name in ("picabia_udnie", "kandinsky_in_grey"):
        save_image(load_image(bundled.style(name)), styles / f"{name}.png")
    (styles / "broken.jpg").write_bytes(b"not an image")
    out = tmp_path / "sheet.png"
    assert main(["sheet", str(bundled.photo("chelsea")), "--styles", str(styles), "--size", "64", "--cell", "64",
                 "-o", str(out), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert sorted(record["styles"]) == ["kandinsky_in_grey", "picabia_udnie"]
    assert [f["style"] for f in record["failed"]] == ["broken"]
    sheet = load_image(out)
    assert sheet.shape[-1] > 64 * 2  # photo + results side by side


def test_sheet_of_the_fast_model_styles(tmp_path, capsys):
    out = tmp_path / "fast.png"
    assert main(["sheet", str(bundled.photo("coffee")), "--method", "fast", "--size", "64", "--cell", "64",
                 "-o", str(out), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["styles"]) == 4


def test_sheet_bad_output_suffix_is_exit_2(tmp_path, capsys):
    assert main(["sheet", str(bundled.photo("coffee")), "-o", str(tmp_path / "x.txt")]) == 2
    assert "suffix" in capsys.readouterr().err
