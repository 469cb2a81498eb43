"""L-BFGS for pixel optimization: one function evaluation per ``step()``, no line search.

Why not ``torch.optim.LBFGS``: its first iteration is a probe of length ``1/|g|_1`` (a few thousandths
of a pixel step here), because it knows nothing of the problem's curvature. In coarse-to-fine
stylization every scale but the first starts from an image that the previous scale already optimized,
and that scale measured the curvature: ``initial_scale`` carries it over, so the first iteration at
a new scale is a real step instead of a wasted evaluation (at 512 px that evaluation is ~0.3 s on this
CPU). The two-loop recursion is written without host synchronizations (the per-pair coefficients stay
0-dim tensors), which matters on a GPU where an iteration takes ~10 ms; the one left per iteration is
the curvature check on the newest pair, as in torch's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch


class LBFGS(torch.optim.Optimizer):
    """Limited-memory BFGS over one tensor, fixed step ``lr`` along the quasi-Newton direction.

    Same update as ``torch.optim.LBFGS(max_iter=1, line_search_fn=None)`` except for the first step:
    with ``initial_scale`` h the first direction is ``-h * g`` with step ``lr`` (h: an estimate of the
    inverse curvature, e.g. :attr:`inverse_curvature` of a previous run scaled to the new problem);
    without it, torch's cautious ``-g * min(1, 1/|g|_1)``.
    """

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 1.0, history_size: int = 50,
                 initial_scale: float | None = None) -> None:
        if lr <= 0 or history_size < 1:
            raise ValueError("lr must be > 0 and history_size >= 1")
        if initial_scale is not None and not initial_scale > 0:
            raise ValueError(f"initial_scale must be > 0, got {initial_scale}")
        super().__init__(params, {"lr": lr, "history_size": history_size})
        if len(self.param_groups) != 1 or len(self.param_groups[0]["params"]) != 1:
            raise ValueError("this L-BFGS optimizes exactly one tensor (the image)")
        self._initial_scale = initial_scale

    @property
    def _param(self) -> torch.Tensor:
        return self.param_groups[0]["params"][0]

    @property
    def inverse_curvature(self) -> float | None:
        """The current scale of the initial inverse Hessian (s.y / y.y of the latest pair), if measured."""
        h = self.state[self._param].get("h_diag")
        return None if h is None else float(h)

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        with torch.enable_grad():
            loss = closure()
        p = self._param
        if p.grad is None:
            raise RuntimeError("the closure did not produce a gradient for the optimized tensor")
        group = self.param_groups[0]
        state = self.state[p]
        g = p.grad.detach().reshape(-1).float()
        s_hist: list[torch.Tensor] = state.setdefault("s", [])
        y_hist: list[torch.Tensor] = state.setdefault("y", [])
        rho: list[torch.Tensor] = state.setdefault("rho", [])
        h_diag = state.get("h_diag")
        if "prev_g" in state:  # the pair of the step just taken
            s, y = state["last_step"], g - state["prev_g"]
            ys = y.dot(s)
            if ys > 1e-10:  # curvature condition; otherwise skip the pair, as torch does
                if len(s_hist) == group["history_size"]:
                    s_hist.pop(0), y_hist.pop(0), rho.pop(0)
                s_hist.append(s), y_hist.append(y), rho.append(1.0 / ys)
                h_diag = state["h_diag"] = ys / y.dot(y)
        elif self._initial_scale is not None:
            h_diag = state["h_diag"] = torch.tensor(self._initial_scale, dtype=g.dtype, device=g.device)

        q = g.neg()
        alphas = []
        for s, y, r in zip(reversed(s_hist), reversed(y_hist), reversed(rho), strict=True):
            a = s.dot(q) * r
            q.addcmul_(y, a, value=-1)
            alphas.append(a)
        if h_diag is None:  # first step, nothing known of the curvature: torch's cautious probe
            direction = q.mul_(min(1.0, 1.0 / float(g.abs().sum())))
        else:
            direction = q.mul_(h_diag)
            for s, y, r, a in zip(s_hist, y_hist, rho, reversed(alphas), strict=True):
                b = y.dot(direction) * r
                direction.addcmul_(s, a - b)
        step = direction.mul_(group["lr"])
        p.add_(step.view_as(p).to(p.dtype))
        state["last_step"], state["prev_g"] = step, g.clone()
        return loss
