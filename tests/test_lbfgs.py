"""impasto's L-BFGS: the same iterates as torch's without a carried scale, a real first step with one."""

from __future__ import annotations

import pytest
import torch

from impasto.lbfgs import LBFGS


def _quadratic(n: int = 40, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """An ill-conditioned convex quadratic 0.5 x'Ax - b'x (curvatures 0.1 .. 10)."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    a = q @ torch.diag(torch.logspace(-1, 1, n, dtype=torch.float64)) @ q.T
    return a.float(), torch.randn(n, generator=g)


def _run(opt_cls, x0: torch.Tensor, loss_fn, steps: int, **kw) -> list[float]:
    x = x0.clone().requires_grad_(True)
    opt = opt_cls([x], **kw)
    losses = []

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = loss_fn(x)
        loss.backward()
        return loss

    for _ in range(steps):
        losses.append(float(opt.step(closure).detach()))
    return losses


def test_iterates_match_torch_lbfgs_with_one_evaluation_per_step():
    a, b = _quadratic()
    x0 = torch.randn(b.shape, generator=torch.Generator().manual_seed(5))
    def f(x):
        return 0.5 * x @ a @ x - b @ x

    ours = _run(LBFGS, x0, f, 25, history_size=5)
    theirs = _run(torch.optim.LBFGS, x0, f, 25, history_size=5, max_iter=1, tolerance_grad=-1.0,
                  tolerance_change=-1.0)
    assert ours == pytest.approx(theirs, rel=1e-4, abs=1e-5)


def test_carried_curvature_makes_the_first_step_count():
    # an image-sized separable quadratic, curvatures 0.5 .. 1.5: torch's first step is 1/|g|_1 long
    g = torch.Generator().manual_seed(1)
    n = 20_000
    curv, target = torch.linspace(0.5, 1.5, n), torch.rand(n, generator=g)
    x0 = torch.rand(n, generator=g)

    def f(x):
        return 0.5 * (curv * (x - target) ** 2).sum()

    gap = float(f(x0))
    probe = _run(LBFGS, x0, f, 2)
    carried = _run(LBFGS, x0, f, 2, initial_scale=1.0)
    assert probe[0] - probe[1] < 0.01 * gap  # the probe barely moves
    assert carried[0] - carried[1] > 0.7 * gap  # a known curvature scale takes most of the way


def test_inverse_curvature_is_measured_from_the_steps_taken():
    a, b = _quadratic(seed=2)
    x = torch.zeros_like(b).requires_grad_(True)
    opt = LBFGS([x])
    assert opt.inverse_curvature is None

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = 0.5 * x @ a @ x - b @ x
        loss.backward()
        return loss

    for _ in range(5):
        opt.step(closure)
    h = opt.inverse_curvature
    assert h is not None and 0.1 <= h <= 10  # s.y/y.y lies within the inverse curvatures' range


def test_rejects_bad_arguments():
    x = torch.zeros(3, requires_grad=True)
    with pytest.raises(ValueError):
        LBFGS([x], initial_scale=0.0)
    with pytest.raises(ValueError):
        LBFGS([x, torch.zeros(2, requires_grad=True)])


def _separable(n: int = 20_000, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    curv, target = torch.linspace(0.5, 1.5, n), torch.rand(n, generator=g)

    def f(x):
        return 0.5 * (curv * (x - target) ** 2).sum()

    return f, torch.rand(n, generator=g)


def test_a_carried_scale_that_overshoots_is_halved_until_the_loss_falls():
    f, x0 = _separable()
    # inverse curvature 3.0 overshoots every coordinate (curvatures 0.5..1.5 want 0.67..2): the step raises f
    x = x0.clone().requires_grad_(True)
    opt = LBFGS([x], initial_scale=3.0)
    start = float(f(x0))

    def closure():
        opt.zero_grad()
        loss = f(x)
        loss.backward()
        return loss

    losses = [float(opt.step(closure).detach()) for _ in range(6)]
    assert losses[0] == pytest.approx(start)
    assert losses[1] > start  # the carried step overshot ...
    assert opt.rejected_steps >= 1  # ... was caught at the next evaluation ...
    accepted = losses[1 + opt.rejected_steps]
    assert accepted < start  # ... and the shorter step it took instead lowered the loss
    assert losses[-1] < 0.2 * start  # and L-BFGS goes on from there as usual


def test_a_hopeless_carried_scale_falls_back_to_the_cautious_probe():
    f, x0 = _separable()
    probe = _run(LBFGS, x0, f, 3)
    # f(x0), the carried step and its 3 halvings all rejected, then the probe from x0 and its successor
    wild = _run(LBFGS, x0, f, 1 + 4 + 2, initial_scale=1e4)
    assert wild[0] == probe[0] and min(wild[1:5]) > probe[0]
    assert wild[5:] == pytest.approx(probe[1:], rel=1e-5)  # exactly torch's first steps, from x0 again


def test_a_good_carried_scale_costs_no_extra_evaluation():
    f, x0 = _separable()
    x = x0.clone().requires_grad_(True)
    opt = LBFGS([x], initial_scale=1.0)

    def closure():
        opt.zero_grad()
        loss = f(x)
        loss.backward()
        return loss

    for _ in range(4):
        opt.step(closure)
    assert opt.rejected_steps == 0
