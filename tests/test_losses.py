"""Loss terms on known tensors."""

from __future__ import annotations

import pytest
import torch

from impasto.losses import ContentLoss, GramStyleLoss, TVLoss, gram_matrix, mean_std


def test_gram_matrix_of_known_features():
    f = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 1, 2)  # C=2, H=1, W=2
    g = gram_matrix(f)
    assert torch.allclose(g[0], torch.tensor([[5.0, 11.0], [11.0, 25.0]]) / 2)
    assert torch.allclose(gram_matrix(f, normalize=False)[0], torch.tensor([[5.0, 11.0], [11.0, 25.0]]) / 4)


def test_gram_is_independent_of_image_size():
    f = torch.rand(1, 8, 5, 7)
    tiled = f.repeat(1, 1, 3, 2)
    assert torch.allclose(gram_matrix(f), gram_matrix(tiled), atol=1e-6)


def test_gram_is_fp32_even_for_bf16_features_and_inside_autocast():
    assert gram_matrix(torch.rand(1, 4, 3, 3, dtype=torch.bfloat16)).dtype == torch.float32
    f = torch.rand(1, 4, 3, 3, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        g = gram_matrix(f)
    assert g.dtype == torch.float32
    g.sum().backward()
    assert f.grad is not None and f.grad.dtype == torch.float32


def test_gram_gradient_matches_autograd():
    f = torch.randn(2, 5, 4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(gram_matrix, (f,))


def test_bf16_gram_of_large_maps_is_summed_in_fp32_slices_and_close_to_fp32():
    # channels-last bf16 activations as autocast produces them; one bf16 product would be ~1.5e-3 off
    f = (torch.randn(2, 16, 128, 128).relu() * 40).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    f.requires_grad_(True)
    g = gram_matrix(f)
    exact = gram_matrix(f.detach().double())
    assert g.dtype == torch.float32
    assert float((g.detach().double() - exact).norm() / exact.norm()) < 5e-4
    w = torch.randn(2, 16, 16)
    (g * w).sum().backward()
    f64 = f.detach().double().requires_grad_(True)
    (gram_matrix(f64) * w.double()).sum().backward()
    assert f.grad is not None and f.grad.dtype == torch.bfloat16
    assert float((f.grad.double() - f64.grad).norm() / f64.grad.norm()) < 1e-2  # bf16 rounding of the grad


def test_content_loss_is_zero_at_target_and_relative_elsewhere():
    t = torch.ones(1, 2, 2, 2)
    loss = ContentLoss("x", t, weight=3.0)
    assert loss({"x": t}).item() == 0.0
    assert loss({"x": 2 * t}).item() == pytest.approx(3.0)  # ||2t - t||^2 / ||t||^2 = 1
    raw = ContentLoss("x", t, weight=1.0, normalize=False)
    assert raw({"x": 3 * t}).item() == pytest.approx(4.0)


def test_style_loss_per_layer_and_weights():
    a, b = torch.rand(1, 4, 6, 6), torch.rand(1, 8, 3, 3)
    targets = {"a": gram_matrix(a), "b": gram_matrix(b)}
    loss = GramStyleLoss(targets, {"a": 2.0}, weight=0.5)
    assert loss({"a": a, "b": b}).item() == pytest.approx(0.0, abs=1e-6)
    scaled = {"a": a * 2, "b": b}  # Gram x4 -> relative error (4-1)^2 = 9
    per = loss.per_layer(scaled)
    assert per["a"].item() == pytest.approx(9.0, rel=1e-5) and per["b"].item() == pytest.approx(0.0, abs=1e-6)
    assert loss(scaled).item() == pytest.approx(0.5 * 2.0 * 9.0, rel=1e-5)


def test_blended_targets_are_weighted_gram_averages():
    f1, f2 = {"l": torch.rand(1, 3, 4, 4)}, {"l": torch.rand(1, 3, 4, 4)}
    t = GramStyleLoss.targets_from([f1, f2], [3.0, 1.0], ["l"])
    assert torch.allclose(t["l"], 0.75 * gram_matrix(f1["l"]) + 0.25 * gram_matrix(f2["l"]))


def test_tv_loss_on_known_image():
    img = torch.zeros(1, 1, 2, 2)
    img[..., 0, 0] = 1.0  # dx: one diff of 1 among 2, dy: same
    assert TVLoss(1.0)(img).item() == pytest.approx(0.5 + 0.5)
    assert TVLoss(1.0, normalize=False)(img).item() == pytest.approx(2.0)
    assert TVLoss(1.0)(torch.full((1, 3, 5, 5), 0.3)).item() == 0.0


def test_mean_std_reads_back_the_statistics_it_was_given():
    x = torch.randn(1, 4, 8, 8)
    y = (x - x.mean((2, 3), keepdim=True)) / x.std((2, 3), keepdim=True, unbiased=False) * 2 + 1
    m, s = mean_std(y)
    assert torch.allclose(m, torch.ones_like(m), atol=1e-5) and torch.allclose(s, 2 * torch.ones_like(s), atol=1e-2)
