"""The statistics of A/B answers: win rates with Wilson intervals, Bradley-Terry strengths (MM
algorithm) with bootstrap intervals.

Ties ("same") count half a win for each side and skips are left out, everywhere. Wilson's interval
rather than the normal approximation because surveys are small and rates near 0 or 1 are common; the
Bradley-Terry fit adds one virtual tie to every pair of variants (a weak prior) so a variant that never
won keeps a finite strength and the fit exists however sparse the answers are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

Z95 = 1.959963984540054
#: (i, j) with i < j -> (times i won, times j won, ties)
Cells = Mapping[tuple[int, int], tuple[int, int, int]]


def wilson(successes: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion (``successes`` may be fractional: ties count half)."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def rate(wins: int, losses: int, ties: int) -> dict[str, float | int | None]:
    """A win rate with its 95% Wilson interval (ties half a win; ``rate`` None without answers)."""
    n = wins + losses + ties
    low, high = wilson(wins + ties / 2, n)
    return {"wins": wins, "losses": losses, "ties": ties, "n": n,
            "rate": (wins + ties / 2) / n if n else None, "low": low, "high": high}


def wins_matrix(k: int, cells: Cells) -> np.ndarray:
    """``m[i, j]``: how often i beat j, ties counted half for each."""
    m = np.zeros((k, k))
    for (i, j), (wi, wj, ties) in cells.items():
        m[i, j] += wi + ties / 2
        m[j, i] += wj + ties / 2
    return m


def bradley_terry(wins: np.ndarray, *, prior: float = 0.5, tol: float = 1e-10, max_iter: int = 100_000
                  ) -> np.ndarray:
    """Strengths ``p`` (summing to 1) with P(i beats j) = p_i / (p_i + p_j), fitted by Hunter's (2004)
    minorization-maximization updates; ``prior`` adds that many wins to each side of every pair.
    ``wins`` is one (k, k) matrix or a stack of them (..., k, k), fitted together."""
    k = wins.shape[-1]
    w = wins + prior * (1 - np.eye(k))
    games = w + np.swapaxes(w, -1, -2)
    total = w.sum(axis=-1)
    p = np.full(total.shape, 1.0 / k)
    for _ in range(max_iter):
        denom = (games / (p[..., :, None] + p[..., None, :])).sum(axis=-1)
        new = total / denom
        new /= new.sum(axis=-1, keepdims=True)
        done = np.abs(new - p).max() < tol
        p = new
        if done:
            break
    return p


def bootstrap_bradley_terry(k: int, cells: Cells, *, samples: int = 1000, seed: int = 0
                            ) -> tuple[np.ndarray, np.ndarray]:
    """95% percentile intervals of the strengths: the answers resampled with replacement ``samples``
    times (a multinomial draw over the outcome counts is the same thing, and fast), all fitted at once."""
    keys = sorted(cells)
    counts = np.array([c for key in keys for c in cells[key]], dtype=float)
    n = int(counts.sum())
    if n == 0 or samples < 1:
        return np.zeros(k), np.ones(k)
    draws = np.random.default_rng(seed).multinomial(n, counts / n, size=samples).reshape(samples, len(keys), 3)
    stacked = np.zeros((samples, k, k))
    for t, (i, j) in enumerate(keys):
        stacked[:, i, j] += draws[:, t, 0] + draws[:, t, 2] / 2
        stacked[:, j, i] += draws[:, t, 1] + draws[:, t, 2] / 2
    fits = bradley_terry(stacked, tol=1e-9)
    return np.percentile(fits, 2.5, axis=0), np.percentile(fits, 97.5, axis=0)
