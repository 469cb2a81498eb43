"""L-BFGS for pixel optimization: one function evaluation per ``step()``, no line search.

Why not ``torch.optim.LBFGS``: its first iteration is a probe of length ``1/|g|_1`` (a few thousandths
of a pixel step here), because it knows nothing of the problem's curvature. In coarse-to-fine
stylization every scale but the first starts from an image that the previous scale already optimized,
and that scale measured the curvature: ``initial_scale`` carries it over, so the first iteration at
a new scale is a real step instead of a wasted evaluation (at 512 px that evaluation is ~0.3 s on this
CPU). The two-loop recursion is written without host synchronizations (the per-pair coefficients stay
0-dim tensors), which matters on a GPU where an iteration takes ~10 ms; the one left per iteration is
the curvature check on the newest pair, as in torch's.

The carried scale is a heuristic (the curvature at the next scale is not exactly the coarse one's per
pixel, and fp32 kernels differ between CPUs), so the carried first step is guarded: the next
evaluation, which the optimizer needs anyway, checks it against the Armijo condition
``f(x0 + d) <= f(x0) + c * g0.d``. A step that fails is halved (up to ``MAX_BACKTRACKS`` times, one
evaluation each) and, if that fails too, replaced by torch's cautious probe from ``x0``. A good carried
step costs nothing extra; a bad one can never leave the image worse than where the scale started.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

#: Armijo's sufficient-decrease constant (the usual 1e-4) and how often a failed carried step is halved
ARMIJO_C = 1e-4
MAX_BACKTRACKS = 3


class LBFGS:
    """Limited-memory BFGS over one tensor, fixed step ``lr`` along the quasi-Newton direction.

    Same update as ``torch.optim.LBFGS(max_iter=1, line_search_fn=None)`` except for the first step:
    with ``initial_scale`` h the first direction is ``-h * g`` with step ``lr`` (h: an estimate of the
    inverse curvature, e.g. :attr:`inverse_curvature` of a previous run scaled to the new problem);
    without it, torch's cautious ``-g * min(1, 1/|g|_1)``. The carried first step is checked (Armijo) at the
    next evaluation and halved, or replaced by the cautious probe, if it did not lower the loss enough.
    """

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 1.0, history_size: int = 50,
                 initial_scale: float | None = None) -> None:
        if lr <= 0 or history_size < 1:
            raise ValueError("lr must be > 0 and history_size >= 1")
        if initial_scale is not None and not initial_scale > 0:
            raise ValueError(f"initial_scale must be > 0, got {initial_scale}")
        tensors = list(params)
        if len(tensors) != 1:
            raise ValueError("this L-BFGS optimizes exactly one tensor (the image)")
        #: torch.optim's layout, without its base class: constructing a torch.optim.Optimizer imports
        #: torch._dynamo (1.5 s on this CPU), a third of the time to a run's first preview
        self.param_groups: list[dict] = [{"params": tensors, "lr": lr, "history_size": history_size}]
        self.state: dict[torch.Tensor, dict] = {tensors[0]: {}}
        self._initial_scale = initial_scale
        #: evaluations spent on carried steps that were rejected (0 when the carried scale was good)
        self.rejected_steps = 0

    def zero_grad(self, set_to_none: bool = True) -> None:
        p = self._param
        if set_to_none:
            p.grad = None
        elif p.grad is not None:
            p.grad.zero_()

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
        if "guard" in state and not self._accept_guarded(p, state, float(loss)):
            return loss
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
        if self._initial_scale is not None and "prev_g" not in state:  # the carried first step: check it next
            state["guard"] = {"f0": float(loss), "gtd": float(g.dot(step)), "x0": p.detach().clone(), "tries": 0,
                              "g0": g.clone()}
        p.add_(step.view_as(p).to(p.dtype))
        state["last_step"], state["prev_g"] = step, g.clone()
        return loss

    def _accept_guarded(self, p: torch.Tensor, state: dict, loss: float) -> bool:
        """Armijo on the carried first step, at the point it led to. True: keep it and go on as usual.
        False: the parameter was moved to a shorter step from x0 (or the cautious probe) to evaluate next."""
        guard = state["guard"]
        step: torch.Tensor = state["last_step"]
        if loss <= guard["f0"] + ARMIJO_C * guard["gtd"]:  # a NaN loss fails here too
            del state["guard"]
            return True
        self.rejected_steps += 1
        guard["tries"] += 1
        if guard["tries"] <= MAX_BACKTRACKS:
            step.mul_(0.5)
            guard["gtd"] *= 0.5
        else:  # the carried scale was wrong: fall back to torch's cautious first step, unchecked
            g0 = guard["g0"]
            step = g0.neg().mul_(min(1.0, 1.0 / float(g0.abs().sum())) * self.param_groups[0]["lr"])
            state.pop("h_diag", None)
            del state["guard"]
        p.copy_(guard["x0"].reshape_as(p) + step.view_as(p).to(p.dtype))
        state["last_step"] = step
        return False
