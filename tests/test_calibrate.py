"""Adaptive weighting: deterministic calibration, strength 0 keeps the photo, strength moves the balance
monotonically, the reported weights reproduce the run, and the CLI rules for strength vs weights."""

from __future__ import annotations

import itertools
import json

import pytest
import torch

from impasto import calibrate
from impasto.cli import main
from impasto.features import Encoder, resolve_weights
from impasto.losses import ContentLoss, GramStyleLoss
from impasto.optimize import DEFAULT_STYLE_LAYERS, stylize


def test_strength_gain_is_zero_one_and_max_at_the_ends_and_increasing():
    g = [calibrate.strength_gain(s / 10) for s in range(11)]
    assert g[0] == 0 and g[5] == pytest.approx(1) and g[10] == pytest.approx(calibrate.G_MAX)
    assert all(a < b for a, b in itertools.pairwise(g))
    with pytest.raises(ValueError):
        calibrate.strength_gain(1.5)


def test_calibration_is_deterministic_and_balances_layers(small_pair):
    content, style = small_pair
    enc = Encoder(["relu4_2", *DEFAULT_STYLE_LAYERS], resolve_weights(None, None))
    unit = GramStyleLoss(GramStyleLoss.targets_from([enc(style)], [1.0], list(DEFAULT_STYLE_LAYERS)))
    first = calibrate.measure(enc, content, unit, ["relu4_2"], style, torch.device("cpu"), None)
    second = calibrate.measure(enc, content, unit, ["relu4_2"], style, torch.device("cpu"), None)
    assert first == second
    cal = calibrate.calibrate(0.5, *first)
    weighted = [cal.layer_weights[n] * first[1][n] for n in DEFAULT_STYLE_LAYERS]
    assert weighted == pytest.approx([1.0] * len(weighted))  # every layer's gap counts the same


def _distances(image, content, style):
    enc = Encoder(["relu4_2", *DEFAULT_STYLE_LAYERS], resolve_weights(None, None))
    fx, fc, fs = enc(image), enc(content), enc(style)
    c = float(ContentLoss("relu4_2", fc["relu4_2"])(fx))
    per = GramStyleLoss(GramStyleLoss.targets_from([fs], [1.0], list(DEFAULT_STYLE_LAYERS))).per_layer(fx)
    return c, sum(float(v) for v in per.values())


def test_strength_zero_is_nearly_the_content(small_pair):
    content, style = small_pair
    out, result = stylize(content, style, size=64, iterations=20, strength=0.0)
    assert float((out - content).abs().mean()) < 0.03  # bf16 on CPU; fp16/bf16 on CUDA differ a little more
    assert result.weights["calibration"]["style_weight"] == 0


def test_increasing_strength_lowers_style_loss_and_raises_content_loss(small_pair):
    content, style = small_pair
    measured = []
    for s in (0.2, 0.5, 0.8):
        out, _ = stylize(content, style, size=64, iterations=40, strength=s)
        measured.append(_distances(out, content, style))
    contents, styles = zip(*measured, strict=True)
    assert contents[0] < contents[1] < contents[2], measured
    assert styles[0] > styles[1] > styles[2], measured


def test_reported_weights_reproduce_the_calibrated_run(small_pair):
    content, style = small_pair
    a, result = stylize(content, style, size=64, iterations=10, strength=0.6)
    w = result.weights
    b, _ = stylize(content, style, size=64, iterations=10, content_weight=w["content_weight"],
                   style_weight=w["style_weight"], layer_weights=w["layer_weights"])
    assert torch.equal(a, b)


def test_cli_strength_record_and_conflicts(tmp_path, capsys):
    from impasto import bundled

    photo, painting = str(bundled.photo("chelsea")), str(bundled.style("picabia_udnie"))
    out = tmp_path / "o.png"
    assert main(["stylize", photo, "-s", painting, "--size", "48", "--iterations", "3", "-o", str(out),
                 "--strength", "0.7", "--json", "-q"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["weights"]["strength"] == 0.7 and set(record["weights"]["layer_weights"]) == set(DEFAULT_STYLE_LAYERS)
    assert main(["stylize", photo, "-s", painting, "-o", str(out), "--strength", "0.7", "--style-weight", "5"]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["stylize", photo, "-s", painting, "-o", str(out), "--layer-weights", "relu1_1"]) == 2
    assert "LAYER=NUMBER" in capsys.readouterr().err
    assert main(["stylize", photo, "-s", painting, "-o", str(out), "--size", "48", "--iterations", "2",
                 "--layer-weights", "relu9_9=1"]) == 2
    assert "relu9_9" in capsys.readouterr().err
