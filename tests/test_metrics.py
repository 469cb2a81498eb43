"""Metric identities, agreement with scikit-image, and the evaluate report end to end."""

from __future__ import annotations

import json
import math

import pytest
import torch

from impasto import metrics
from impasto.cli import main


@pytest.fixture(scope="module")
def photo_pair():
    from impasto import bundled
    from impasto.io import load_image, resize

    x = resize(load_image(bundled.photo("chelsea")), (96, 128))
    noisy = (x + 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    return x, noisy


def test_identities(photo_pair):
    x, _ = photo_pair
    assert metrics.ssim(x, x) == pytest.approx(1.0)
    assert metrics.psnr(x, x) == math.inf
    assert metrics.perceptual_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    assert metrics.content_loss(x, x) == pytest.approx(0.0, abs=1e-6)
    assert metrics.style_loss(x, x) == pytest.approx(0.0, abs=1e-6)


def test_ssim_and_psnr_agree_with_scikit_image(photo_pair):
    skm = pytest.importorskip("skimage.metrics")
    x, y = photo_pair
    a, b = x[0].permute(1, 2, 0).double().numpy(), y[0].permute(1, 2, 0).double().numpy()
    want_rgb = skm.structural_similarity(a, b, channel_axis=2, gaussian_weights=True, sigma=1.5,
                                         use_sample_covariance=False, data_range=1.0)
    assert metrics.ssim(x, y, "rgb") == pytest.approx(want_rgb, abs=1e-4)
    from impasto.color import rgb_to_yiq

    ya, yb = rgb_to_yiq(x.double())[0, 0].numpy(), rgb_to_yiq(y.double())[0, 0].numpy()
    want_y = skm.structural_similarity(ya, yb, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                       data_range=1.0)
    assert metrics.ssim(x, y, "luminance") == pytest.approx(want_y, abs=1e-4)
    assert metrics.psnr(x, y) == pytest.approx(skm.peak_signal_noise_ratio(a, b, data_range=1.0), abs=1e-3)


def test_distances_grow_with_damage(photo_pair):
    x, y = photo_pair
    worse = (y + 0.2 * torch.randn(y.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    assert 0 < metrics.perceptual_distance(x, y) < metrics.perceptual_distance(x, worse)
    assert metrics.psnr(x, worse) < metrics.psnr(x, y)


def test_frechet_distance_zero_for_same_set_and_known_for_shifted_gaussians():
    a = torch.randn(400, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert metrics.frechet_distance(a, a + 2.0) == pytest.approx(12.0, rel=1e-6)  # |mu diff|^2 = 3 * 4


def test_evaluate_cli_writes_json_and_html_report(tmp_path, shared_images, capsys):
    from impasto.io import load_image, resize_long, save_image

    content, style, stylized = (tmp_path / n for n in ("c", "s", "x"))
    for d in (content, style, stylized):
        d.mkdir()
    for name in ("sailboat", "amber"):
        img = resize_long(load_image(shared_images / "content" / f"{name}.jpg"), 96)
        save_image(img, content / f"{name}.png")
        save_image(img.flip(-1), stylized / f"{name}_stylized.png")
    save_image(resize_long(load_image(shared_images / "style" / "udnie.jpg"), 96), style / "udnie.png")
    out = tmp_path / "report"
    assert main(["evaluate", "--content", str(content), "--style", str(style), "--stylized", str(stylized),
                 "--size", "96", "--json", "-o", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_pairs"] == 2 and report["aggregate"]["artfid_style"] > 1
    assert json.loads((out / "report.json").read_text())["n_pairs"] == 2
    page = (out / "index.html").read_text()
    assert page.count("<img") >= 7 and (out / "metrics.png").stat().st_size > 0


def test_evaluate_unmatched_names_exit_2(tmp_path, capsys):
    for d in ("c", "s", "x"):
        (tmp_path / d).mkdir()
    from impasto.io import save_image

    save_image(torch.rand(1, 3, 16, 16), tmp_path / "c" / "a.png")
    save_image(torch.rand(1, 3, 16, 16), tmp_path / "s" / "b.png")
    save_image(torch.rand(1, 3, 16, 16), tmp_path / "x" / "zzz.png")
    assert main(["evaluate", "--content", str(tmp_path / "c"), "--style", str(tmp_path / "s"),
                 "--stylized", str(tmp_path / "x")]) == 2
    assert "could be matched" in capsys.readouterr().err


def test_compare_runs_two_settings_side_by_side(tmp_path, content_path, style_path, capsys):
    out = tmp_path / "cmp"
    code = main(["compare", "--content", str(content_path), "--style", str(style_path), "--setting",
                 "few:method=gatys,size=64,iterations=2,precision=fp32", "--setting",
                 "more:method=gatys,size=64,iterations=12,precision=fp32", "--eval-size", "64", "-o", str(out),
                 "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    few, more = summary["settings"]["few"], summary["settings"]["more"]
    assert more["aggregate"]["style_loss"] < few["aggregate"]["style_loss"]
    assert all(r["seconds"] > 0 and r["process_peak_rss_mb"] > 0 for r in few["runs"])
    assert (out / "side_by_side.png").is_file() and (out / "few" / "report" / "index.html").is_file()


def test_compare_rejects_bad_setting(content_path, style_path, tmp_path, capsys):
    code = main(["compare", "--content", str(content_path), "--style", str(style_path), "--setting",
                 "x:method=magic", "-o", str(tmp_path / "o")])
    assert code == 2 and "unknown method" in capsys.readouterr().err


def test_domain_probe_tells_three_kinds_apart_and_weighs_kinds_equally():
    from impasto.probe import DomainProbe

    g = torch.Generator().manual_seed(0)

    def kind(n: int, shift: int) -> torch.Tensor:  # each kind stands out in its own three of forty features
        rows = torch.randn(n, 40, generator=g)
        rows[:, 3 * shift:3 * shift + 3] += 3.0
        return rows

    probe = DomainProbe.fit({"photos": kind(60, 0), "target": kind(6, 1), "others": kind(30, 2)})  # 10x fewer
    assert probe.names == ("photos", "target", "others")
    held_target, held_photos, held_others = kind(50, 1), kind(50, 0), kind(50, 2)
    assert probe.share(held_target, "target")["fraction"] > 0.85
    assert probe.share(held_photos, "target")["fraction"] < 0.15
    called = probe.fractions(held_others)
    assert called["others"] > 0.85 and called["n"] == 50
    assert sum(v for k, v in called.items() if k != "n") == pytest.approx(1.0)
    row = probe.share(held_target, "target")
    frac = row["fraction"]
    assert row["se"] == pytest.approx(math.sqrt(frac * (1 - frac) / 50)) and row["n"] == 50
    assert row["mean_probability"] > 0.5
    assert probe.probabilities(held_target).sum(dim=1).allclose(torch.ones(50, dtype=torch.float64))
    with pytest.raises(ValueError):
        DomainProbe.fit({"photos": kind(10, 0), "target": kind(1, 1)})
    with pytest.raises(ValueError):
        DomainProbe.fit({"photos": kind(10, 0)})


def test_domain_features_hold_every_style_layer_and_see_the_palette():
    red, blue = torch.zeros(1, 3, 48, 48), torch.zeros(1, 3, 48, 48)
    red[:, 0], blue[:, 2] = 0.8, 0.8
    rows = metrics.domain_features([red, blue], size=48)
    assert rows.shape == (2, 2 * (64 + 128 + 256 + 512 + 512) + 512) and rows.dtype == torch.float64
    first_layer_means = rows[:, :64]  # log channel means at relu1_1
    assert (first_layer_means[0] - first_layer_means[1]).abs().max() > 0.5


def test_pooled_part_of_domain_features_is_the_kid_features_so_one_vgg_pass_serves_both():
    gen = torch.Generator().manual_seed(0)
    images = [torch.rand(1, 3, 40, 56, generator=gen) for _ in range(2)]
    pooled = metrics.pooled_part(metrics.domain_features(images, size=48))
    assert torch.allclose(pooled, metrics.set_features(images, size=48), rtol=1e-6, atol=1e-7)
