"""A linear domain probe: which of a few kinds of image (photos, one painter, other paintings) does a set
of images read as?

KID on pooled relu5_3 features compares whole distributions, but those features are mostly about
content, and a dozen held-out paintings leave it with an error bar as wide as the gap between photos and
paintings. The probe asks the narrower question a translation or a fine-tuned generator is meant to
answer: fitted once on *training* images of each kind (an L2-regularized multinomial logistic regression
with balanced classes on ``impasto.metrics.domain_features``), what fraction of a set does it call the
target kind? Its accuracy on held-out real images says whether the answer means anything. With a third
kind (other painters' work) beside photos and the target, an output that merely stopped looking like a
photo (noise, a texture) is not counted as the target painter. The probe never saw a generator's output,
so no generator was trained against it (unlike its discriminator); a generator can still push past the
target along the probe's directions, so the fraction says "reads as", KID says "matches".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class DomainProbe:
    """Standardize then ``softmax(x @ weight + bias)`` over ``names``."""

    names: tuple[str, ...]
    mean: torch.Tensor
    scale: torch.Tensor
    weight: torch.Tensor
    bias: torch.Tensor

    @classmethod
    def fit(cls, groups: dict[str, torch.Tensor], l2: float = 1e-2) -> DomainProbe:
        """Fit on feature rows per kind (>= 2 kinds, >= 2 rows each); kinds weigh equally whatever their sizes."""
        if len(groups) < 2 or any(rows.shape[0] < 2 for rows in groups.values()):
            raise ValueError("DomainProbe.fit needs at least two kinds with at least two rows each")
        x = torch.cat(list(groups.values())).double()
        mean, scale = x.mean(0), x.std(0).clamp_min(1e-6)
        z = (x - mean) / scale
        y = torch.cat([torch.full((rows.shape[0],), i) for i, rows in enumerate(groups.values())])
        row_weight = torch.cat([torch.full((rows.shape[0],), 1 / (len(groups) * rows.shape[0]))
                                for rows in groups.values()]).double()
        w = torch.zeros(z.shape[1], len(groups), dtype=torch.float64, requires_grad=True)
        b = torch.zeros(len(groups), dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([w, b], max_iter=500, tolerance_grad=1e-9, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            opt.zero_grad()
            per_row = F.cross_entropy(z @ w + b, y, reduction="none")
            loss = (row_weight * per_row).sum() + l2 * w.pow(2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        return cls(tuple(groups), mean, scale, w.detach(), b.detach())

    def probabilities(self, features: torch.Tensor) -> torch.Tensor:
        """(N, len(names)) class probabilities per feature row."""
        return torch.softmax((features.double() - self.mean) / self.scale @ self.weight + self.bias, dim=1)

    def fractions(self, features: torch.Tensor) -> dict[str, float | int]:
        """The fraction of rows called each kind (its most probable one), and how many rows."""
        called = self.probabilities(features).argmax(dim=1)
        return {name: float((called == i).double().mean()) for i, name in enumerate(self.names)} | {"n": len(called)}

    def share(self, features: torch.Tensor, name: str) -> dict[str, float]:
        """The fraction of rows called ``name``, its binomial standard error, and the mean probability."""
        p = self.probabilities(features)
        i = self.names.index(name)
        frac = float((p.argmax(dim=1) == i).double().mean())
        return {"fraction": frac, "se": math.sqrt(frac * (1 - frac) / len(p)),
                "mean_probability": float(p[:, i].mean()), "n": len(p)}
