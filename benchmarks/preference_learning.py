"""Preference learning against simulated users (prints JSON): how fast impasto's learned defaults find a
user's hidden taste from A/B answers, actively chosen questions against random ones.

    python benchmarks/preference_learning.py [--users 100] [--pairs 24] [--split test]

Each simulated user has a hidden preferred strength that may depend on the pair (``base + slope * x``,
``x`` the pair's measured content-style gap: log10 of the photo's Gram distance to the painting at 128 px,
centred over the pairs, from real photo x painting pairs of ``../shared/corpus``), a sharpness, and a
taste for keeping the photo's colours, and its own tolerance around the preferred strength (a width the
learner does not assume: the learner's model is deliberately not the simulator's). It answers each
question by Bradley-Terry with that sharpness (so answers are noisy; "same" is not used). Reported at
0, 5, 10, 20 and 40 answers: the learned strength's absolute error on fresh pairs, the share of users
within 0.1, how often the learned default beats the global default (0.5) in the user's own judgment,
for active and random questions (both from the same question set); and how often the colour taste is decided correctly.
"""

from __future__ import annotations

import argparse
import json
import math
import random
from pathlib import Path

import numpy as np

from impasto.feedback.learn import CANDIDATES, BinaryTaste, Comparison, StrengthModel

CHECKPOINTS = (0, 5, 10, 20, 40)
DEFAULT_STRENGTH = 0.5  # gatys' default


def pair_features(corpus: Path, n: int, split: str, seed: int) -> list[float]:
    """log10 Gram distance of each photo to its painting at 128 px, centred: the pair feature."""
    from impasto.io import load_image, resize_long
    from impasto.metrics import style_loss

    rows = [line.split("\t") for line in (corpus / "split.tsv").read_text().splitlines()[1:]]
    photos = sorted(corpus / "photos" / r[0] for r in rows if r[1] == "photos" and r[2].strip() == split)
    paintings = sorted(corpus / "paintings" / r[0] for r in rows if r[1] == "paintings" and r[2].strip() == split)
    rng = random.Random(seed)
    pairs = list(zip(rng.sample(photos, n), rng.sample(paintings, n), strict=True))
    gaps = [math.log10(style_loss(resize_long(load_image(p), 128), resize_long(load_image(s), 128)))
            for p, s in pairs]
    centre = float(np.mean(gaps))
    return [g - centre for g in gaps]


class User:
    """A hidden taste and a noisy way of answering."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.base = float(rng.uniform(0.15, 0.85))
        self.slope = float(rng.uniform(-0.3, 0.3)) if rng.random() < 0.5 else 0.0
        self.sharpness = float(rng.uniform(1.5, 5.0))
        self.width = float(rng.uniform(0.2, 0.45))  # not the learner's WIDTH: the model is misspecified on purpose
        self.keeps_colour = float(rng.choice([0.2, 0.8]))
        self.rng = rng

    def preferred(self, x: float) -> float:
        return min(1.0, max(0.0, self.base + self.slope * x))

    def prefers(self, a: float, b: float, x: float) -> float:
        """P(this user picks strength a over b on a pair with feature x)."""
        star = self.preferred(x)
        diff = ((b - star) ** 2 - (a - star) ** 2) / self.width**2
        return 1.0 / (1.0 + math.exp(-self.sharpness * diff))

    def answer(self, a: float, b: float, x: float) -> float:
        return float(self.rng.random() < self.prefers(a, b, x))


def run_user(user: User, features: list[float], active: bool, rng: np.random.Generator) -> dict[int, dict[str, float]]:
    model, out = StrengthModel(), {}
    train, fresh = features[: len(features) // 2], features[len(features) // 2:]
    for n in range(max(CHECKPOINTS) + 1):
        if n in CHECKPOINTS:
            out[n] = _score(model, user, fresh)
        x = float(rng.choice(train))
        a, b = model.next_question(x) if active else CANDIDATES[int(rng.integers(len(CANDIDATES)))]
        model.update(Comparison(float(a), float(b), user.answer(float(a), float(b), x), x))
    return out


def _score(model: StrengthModel, user: User, fresh: list[float]) -> dict[str, float]:
    """Error of the default the user would get (learned once confident, else 0.5) and of the raw estimate."""
    errs, used_errs, wins = [], [], []
    for x in fresh:
        est = model.estimate(x)
        used = est.mean if est.confident else DEFAULT_STRENGTH
        errs.append(abs(est.mean - user.preferred(x)))
        used_errs.append(abs(used - user.preferred(x)))
        wins.append(user.prefers(used, DEFAULT_STRENGTH, x))
    return {"error": float(np.mean(errs)), "within_0.1": float(np.mean(errs) <= 0.1),
            "default_error": float(np.mean(used_errs)), "beats_global_default": float(np.mean(wins)),
            "confident": float(model.estimate(0.0).confident)}


def colour_taste(users: list[User], answers: int) -> float:
    """Share of users whose colour taste is decided correctly after ``answers`` keep/no-keep questions."""
    right = 0
    for u in users:
        yes = sum(u.rng.random() < u.keeps_colour for _ in range(answers))
        decided = BinaryTaste(yes, answers - yes).decided()
        right += decided is not None and decided == (u.keeps_colour > 0.5)
    return right / len(users)


def summarize(runs: list[dict[int, dict[str, float]]]) -> dict[str, dict[str, float]]:
    return {str(n): {k: round(float(np.mean([r[n][k] for r in runs])), 4) for k in runs[0][n]} for n in CHECKPOINTS}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--pairs", type=int, default=24)
    ap.add_argument("--split", default="test")
    ap.add_argument("--corpus", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "corpus")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    features = pair_features(args.corpus, args.pairs, args.split, args.seed)
    report: dict[str, object] = {"benchmark": "preference_learning", "users": args.users, "pairs": args.pairs,
                                 "feature_spread": round(float(np.std(features)), 3)}
    for mode in ("active", "random"):
        rng = np.random.default_rng(args.seed)
        users = [User(np.random.default_rng(rng.integers(2**32))) for _ in range(args.users)]
        report[mode] = summarize([run_user(u, features, mode == "active", rng) for u in users])
    rng = np.random.default_rng(args.seed + 1)
    users = [User(np.random.default_rng(rng.integers(2**32))) for _ in range(args.users)]
    report["colour_taste_decided_correctly"] = {str(n): colour_taste(users, n) for n in (5, 10, 20)}
    report["targets"] = {
        "zero_answers_is_the_default": report["active"]["0"]["default_error"] == report["random"]["0"]["default_error"]
        and report["active"]["0"]["beats_global_default"] == 0.5,
        "within_0.1_at_20_answers_active": report["active"]["20"]["within_0.1"]}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
