"""A user's taste, learned from their A/B choices and ratings: the strength they prefer (per method, and
as a function of the pair), whether they keep the photo's colours, which method they pick.

Why a grid posterior: the model has two or three numbers per user and the evidence is tens of answers,
so an exact Bayesian posterior on a grid is cheap (a few thousand points), gives honest uncertainty with
no tuning, and makes the most informative next question a direct computation (expected information gain).

Strength model: the user's preferred strength for a pair with feature ``x`` (the log10 of the pair's
measured content-style gap, centred; 0 when unknown) is ``s*(x) = clip(base + slope * x, 0, 1)``; a variant
at strength ``s`` has utility ``-((s - s*) / WIDTH)^2``, and the user picks A over B with probability
``sigmoid(sharpness * (u_A - u_B))`` (Bradley-Terry). "Same" counts as half a win each way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

WIDTH = 0.3
BASES = np.linspace(0.0, 1.0, 51)
SLOPES = np.linspace(-0.6, 0.6, 25)
SHARPNESS = np.array([1.0, 2.5, 6.0])
#: the questions asked: strengths 0.1..1 (0 is the photo itself for a feed-forward method: nothing to
#: judge), at most 0.5 apart (two images a person can compare as "a little more or less")
CANDIDATES = tuple((float(a), float(b)) for a in np.linspace(0.1, 1, 10) for b in np.linspace(0.1, 1, 10)
                   if 1e-9 < b - a <= 0.5 + 1e-9)
#: answers and posterior spread from which a learned strength replaces the default
MIN_ANSWERS = 8
MAX_STD = 0.1


@dataclass(frozen=True)
class Comparison:
    """One A/B answer about strength: the two strengths, 1 (A won), 0 (B won) or 0.5 (same), the pair feature."""

    a: float
    b: float
    outcome: float
    feature: float = 0.0


@dataclass(frozen=True)
class StrengthEstimate:
    mean: float
    std: float
    answers: int

    @property
    def confident(self) -> bool:
        return self.answers >= MIN_ANSWERS and self.std <= MAX_STD


def _preferred(feature: float) -> np.ndarray:
    """s*(x) on the (base, slope) grid."""
    return np.clip(BASES[:, None] + SLOPES[None, :] * feature, 0.0, 1.0)


def _win_probability(a: float, b: float, feature: float) -> np.ndarray:
    """P(A beats B) on the (base, slope, sharpness) grid."""
    star = _preferred(feature)[..., None]
    diff = ((b - star) ** 2 - (a - star) ** 2) / WIDTH**2
    return 1.0 / (1.0 + np.exp(-SHARPNESS[None, None, :] * diff))


class StrengthModel:
    """The posterior over one user's strength preference for one method."""

    def __init__(self, comparisons: Sequence[Comparison] = (), *, prior_slope_std: float = 0.25) -> None:
        # a flat prior on the base, a prior that keeps the slope near 0 until answers say otherwise
        log_prior = -0.5 * (SLOPES / prior_slope_std) ** 2
        self.log_post = np.broadcast_to(log_prior[None, :, None], (len(BASES), len(SLOPES), len(SHARPNESS))).copy()
        self.answers = 0
        for c in comparisons:
            self.update(c)

    def update(self, c: Comparison) -> None:
        p = np.clip(_win_probability(c.a, c.b, c.feature), 1e-9, 1 - 1e-9)
        self.log_post += c.outcome * np.log(p) + (1 - c.outcome) * np.log1p(-p)
        self.answers += 1

    def posterior(self) -> np.ndarray:
        w = np.exp(self.log_post - self.log_post.max())
        return w / w.sum()

    def estimate(self, feature: float = 0.0) -> StrengthEstimate:
        """The preferred strength for a pair with this feature: posterior mean and spread."""
        w = self.posterior().sum(axis=2)
        star = _preferred(feature)
        mean = float((w * star).sum())
        std = math.sqrt(max(0.0, float((w * (star - mean) ** 2).sum())))
        return StrengthEstimate(mean, std, self.answers)

    def next_question(self, feature: float = 0.0) -> tuple[float, float]:
        """The pair of strengths whose answer is expected to teach the most (largest information gain)."""
        w = self.posterior()
        best, best_gain = CANDIDATES[0], -1.0
        for a, b in CANDIDATES:
            p = _win_probability(a, b, feature)
            mean = float((w * p).sum())
            gain = _entropy(mean) - float((w * _entropy_array(p)).sum())
            if gain > best_gain:
                best, best_gain = (float(a), float(b)), gain
        return best


def _entropy(p: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return -(p * math.log(p) + (1 - p) * math.log(1 - p))


def _entropy_array(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return -(p * np.log(p) + (1 - p) * np.log1p(-p))


@dataclass(frozen=True)
class BinaryTaste:
    """A yes/no taste (e.g. keep the photo's colours) from answers that differ only in it: a Beta(1, 1)
    posterior on the probability of preferring "yes"."""

    yes: float
    no: float

    @property
    def answers(self) -> int:
        return round(self.yes + self.no)

    def probability_yes_preferred(self) -> float:
        """P(the user's rate of preferring "yes" is above one half), by the regularized incomplete beta."""
        return 1.0 - _beta_cdf(0.5, self.yes + 1, self.no + 1)

    def decided(self, min_answers: int = 5, credibility: float = 0.9) -> bool | None:
        """True/False once the evidence is clear, None while it is not."""
        if self.answers < min_answers:
            return None
        p = self.probability_yes_preferred()
        return True if p >= credibility else False if p <= 1 - credibility else None


def _beta_cdf(x: float, a: float, b: float, steps: int = 2000) -> float:
    """The Beta(a, b) CDF at x by the midpoint rule on the log density (a, b >= 1: smooth, no poles)."""
    grid = (np.arange(steps) + 0.5) / steps
    log_pdf = (a - 1) * np.log(grid) + (b - 1) * np.log1p(-grid)
    pdf = np.exp(log_pdf - log_pdf.max())
    return float(pdf[grid < x].sum() / pdf.sum())
