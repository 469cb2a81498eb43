"""The stylization contract: options declared once, every surface derived from them, one strength."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from impasto import options, stylizer
from impasto.cli import main
from impasto.errors import InputError


def test_every_option_is_declared_with_help_and_a_default_that_passes_its_own_checks():
    for name, method in options.METHODS.items():
        defaults = options.make_options(name)  # nothing given: every default must validate
        assert type(defaults) is method.options
        for f in dataclasses.fields(method.options):
            assert f.metadata.get("help"), (name, f.name)


@pytest.mark.parametrize(("method", "strength"), [("gatys", 0.5), ("fast", 1.0), ("adain", 1.0)])
def test_one_default_strength_per_method_on_every_surface(method, strength):
    from impasto.cli.options import add_option_flags, options_from_args

    assert options.make_options(method).strength == strength  # Python API and compare
    described = {o["name"]: o for o in options.describe(web_only=True)[method]["options"]}
    assert described["strength"]["default"] == strength  # what the web page shows
    import argparse

    parser = argparse.ArgumentParser()
    names = add_option_flags(parser)
    assert options_from_args(parser.parse_args([]), method, names).strength == strength  # CLI


def test_cli_flags_are_derived_from_the_declarations(capsys):
    with pytest.raises(SystemExit):
        main(["stylize", "--help"])
    text = capsys.readouterr().out
    for method in options.METHODS:
        for f in options.fields(method):
            name = f.name.replace("_", "-")
            flag = f"--no-{name}" if f.type == "bool" and f.default else f"--{name}"  # booleans that default on
            assert flag in text, flag


def test_the_web_form_takes_only_what_it_offers_and_checks_it_at_submit():
    form = options.from_web_form("gatys", {"strength": "0.7", "size": "128", "iterations": ""})
    assert form.strength == 0.7 and form.size == 128 and form.iterations is None
    fast = options.from_web_form("fast", {"size": "256", "style_index": "2"})
    assert fast.max_size == 256 and fast.style_index == 2  # the form's "size" is the cap of a network's output
    for method, bad, message in [("gatys", {"style_weight": "5"}, "takes no form field style_weight"),
                                 ("gatys", {"strength": "inf"}, "finite"),
                                 ("adain", {"strength": "1e308"}, "<= 1"),
                                 ("gatys", {"size": "8"}, ">= 16")]:
        with pytest.raises(InputError, match=message):
            options.from_web_form(method, bad)


def test_a_request_runs_each_method_and_its_record_says_what_ran(small_pair):
    content, style = small_pair
    seen = []
    for method, given in [("gatys", {"size": 48, "iterations": 3}), ("fast", {"style_index": 1}), ("adain", {})]:
        opts = options.make_options(method, {**given, "precision": "fp32", "device": "cpu"})
        out = stylizer.stylize(stylizer.StylizeRequest(content, [style], opts), lambda p: seen.append(p.stage))
        assert out.image.shape[:2] == (1, 3) and torch.isfinite(out.image).all()
        assert out.record["method"] == method and out.record["options"]["strength"] == opts.strength
        json.dumps(out.record, default=str)
    assert "running" in seen and "done" in seen  # feed-forward methods report too


def test_a_cancel_before_a_feed_forward_method_starts_raises_cancelled(small_pair):
    content, style = small_pair
    request = stylizer.StylizeRequest(content, [style], options.make_options("adain"))
    with pytest.raises(stylizer.Cancelled):
        stylizer.stylize(request, lambda p: True)


def test_compare_runs_the_readme_example_with_every_method(tmp_path, capsys):
    from impasto import bundled

    photo, painting = str(bundled.photo("chelsea")), str(bundled.style("picabia_udnie"))
    code = main(["compare", photo, "-s", painting, "--method", "fast", "--method", "adain",
                 "--setting", "gatys:method=gatys,size=48,iterations=3", "--eval-size", "64",
                 "-o", str(tmp_path / "cmp"), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and set(summary["settings"]) == {"fast", "adain", "gatys"}
    assert summary["settings"]["fast"]["runs"][0]["style_index"] == 0  # the bundled painting it was trained on
    for name, entry in summary["settings"].items():
        assert entry["method"] == name and (tmp_path / "cmp" / name / "chelsea_picabia_udnie.png").is_file()
    assert (tmp_path / "cmp" / "side_by_side.png").is_file()
    from impasto.feedback.store import FeedbackStore, default_db_path

    with FeedbackStore(default_db_path()) as store:  # every image compare wrote is a recorded, rateable run
        runs = store.history("default")
    assert sorted(r["method"] for r in runs) == ["adain", "fast", "gatys"]
    assert main(["rate", str(tmp_path / "cmp" / "adain" / "chelsea_picabia_udnie.png"), "4"]) == 0


def test_compare_refuses_a_bad_setting_before_making_its_folder(tmp_path, capsys):
    from impasto import bundled

    out = tmp_path / "never"
    code = main(["compare", str(bundled.photo("chelsea")), "-s", str(bundled.style("picabia_udnie")),
                 "--setting", "x:method=fast,iterations=3", "-o", str(out)])
    assert code == 2 and "fast has no option --iterations" in capsys.readouterr().err and not out.exists()


def test_compare_refuses_a_painting_a_fast_model_cannot_paint_and_a_setting_without_a_method(tmp_path, capsys):
    from PIL import Image

    from impasto import bundled

    photo, out = str(bundled.photo("chelsea")), tmp_path / "never"
    other = tmp_path / "other.png"
    Image.new("RGB", (32, 32), (200, 40, 40)).save(other)
    assert main(["compare", photo, "-s", str(other), "--method", "fast", "-o", str(out)]) == 2
    assert "paints only its own styles" in capsys.readouterr().err and not out.exists()
    for setting, message in (("a:", "name the method"), ("a:method=adain,max_size=64,max_size=32", "given twice")):
        assert main(["compare", photo, "-s", str(other), "--setting", setting, "-o", str(out)]) == 2
        assert message in capsys.readouterr().err and not out.exists()
    code = main(["compare", photo, "-s", str(other), "--setting", "f:method=fast,style_index=2,max_size=32",
                 "--eval-size", "32", "-o", str(out), "--json"])  # the user's explicit choice is kept
    assert code == 0 and json.loads(capsys.readouterr().out)["settings"]["f"]["options"]["style_index"] == 2


@pytest.mark.parametrize("method", ["gatys", "adain"])
@pytest.mark.parametrize("weights", [[float("inf"), 1.0], [float("nan"), 1.0], [-1.0, 2.0], [0.0, 0.0], [1.0]])
def test_every_blending_method_refuses_a_bad_style_blend_from_the_python_api(small_pair, method, weights):
    # the engines themselves check (not only the contract's front door): adain once took inf and nan
    from impasto import methods, optimize

    content, style = small_pair
    styles = [style, style.flip(-1)]
    with pytest.raises(InputError, match="style weight"):
        if method == "adain":
            methods.stylize_adain(content, styles, options.make_options("adain"), style_weights=weights)
        else:
            optimize.stylize(content, styles, options.make_options("gatys", {"iterations": 1, "size": 32}),
                             style_weights=weights)


def test_feed_forward_methods_name_their_bundled_model_in_one_place():
    from impasto import bundled, methods

    for method in ("fast", "adain"):
        opts = options.make_options(method)
        assert stylizer.model_path(opts) == methods.model_for(opts) == bundled.model(type(opts).BUNDLED_MODEL)
    assert methods.model_for(options.make_options("adain", {"model": "x.safetensors"})).name == "x.safetensors"
