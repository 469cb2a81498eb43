"""Defaults that follow one profile's taste: the evidence (A/B choices and ratings in the feedback store)
turned into :mod:`impasto.feedback.learn` models, per method, and the rules for when they apply.

Evidence, per profile:
- an A/B choice between two runs of the same method on the same photo and painting that differ only in
  strength is a strength comparison; only in colour preservation, a colour answer; two methods on the
  same pair, a method answer ("same" counts half, "skip" nothing);
- two rated runs of the same method on the same pair at different strengths count as a comparison too
  (more stars wins, equal stars is "same").
A learned value replaces a default only once the evidence is enough (:data:`learn.MIN_ANSWERS` answers and
a posterior spread of at most :data:`learn.MAX_STD` for strength; five answers and 90% credibility for the
yes/no tastes); with no evidence every default is exactly the declared one.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from impasto.feedback.learn import BinaryTaste, Comparison, StrengthEstimate, StrengthModel
from impasto.feedback.store import FeedbackStore

#: log10 of a typical photo-to-painting Gram distance at 128 px (the median over 48 corpus train pairs,
#: measured 2026-11-24); the pair feature is centred on it so that "no feature" (0) means a typical pair
FEATURE_CENTRE = 0.14


def pair_feature(content: Any, style: Any) -> float:
    """How far the painting's style is from the photo's own (log10 Gram distance at 128 px, centred):
    the pair property a preferred strength may depend on. ~0.3 s on a CPU once VGG is loaded."""
    from impasto.io import pad_to_min, resize_long
    from impasto.metrics import style_loss

    # edges repeated up to relu5_1's 16 px: a 2x128 photo, which fast and adain stylize padded, would
    # otherwise fail to be measured (its run went unrecorded, its A/B pair failed)
    c, s = (pad_to_min(resize_long(x, 128), 16) for x in (content, style))
    return math.log10(max(style_loss(c, s), 1e-6)) - FEATURE_CENTRE


@dataclass
class Evidence:
    """One profile's answers, sorted by what they teach."""

    strength: dict[str, list[Comparison]] = field(default_factory=dict)
    colour: dict[str, list[float]] = field(default_factory=dict)  # 1: the kept-colour variant won
    methods: list[tuple[str, str, float]] = field(default_factory=list)  # (method a, method b, 1 if a won)

    def colour_taste(self, method: str) -> BinaryTaste:
        wins = self.colour.get(method, [])
        return BinaryTaste(sum(wins), len(wins) - sum(wins))

    def method_taste(self, first: str, second: str) -> BinaryTaste:
        """Yes = ``first`` preferred over ``second``."""
        yes = no = 0.0
        for a, b, outcome in self.methods:
            if (a, b) == (first, second):
                yes, no = yes + outcome, no + 1 - outcome
            elif (a, b) == (second, first):
                yes, no = yes + 1 - outcome, no + outcome
        return BinaryTaste(yes, no)


_OUTCOME = {"a": 1.0, "b": 0.0, "same": 0.5}
_PAIRS = ("SELECT c.winner, ra.method AS ma, rb.method AS mb, ra.settings AS sa, rb.settings AS sb, ra.info AS ia, "
          "rb.info AS ib FROM choices c JOIN runs ra ON ra.id = c.run_a JOIN runs rb ON rb.id = c.run_b "
          "JOIN profiles p ON p.id = c.profile_id WHERE p.name = ? AND c.winner != 'skip' "
          "AND ra.content_fp = rb.content_fp AND ra.style_fps = rb.style_fps ORDER BY c.id")
_RATED = ("SELECT r.id, r.method, r.settings, r.info, r.content_fp, r.style_fps, "
          "(SELECT stars FROM ratings WHERE run_id = r.id ORDER BY id DESC LIMIT 1) AS stars "
          "FROM runs r JOIN profiles p ON p.id = r.profile_id WHERE p.name = ? AND stars IS NOT NULL ORDER BY r.id")


def _feature(info: str | None) -> float:
    value = json.loads(info or "{}").get("pair_feature")
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else 0.0


def _add(ev: Evidence, method_a: str, method_b: str, settings: tuple[dict[str, Any], dict[str, Any]],
         outcome: float, feature: float) -> None:
    sa, sb = settings
    if method_a != method_b:
        ev.methods.append((method_a, method_b, outcome))
        return
    others_a = {k: v for k, v in sa.items() if k not in ("strength", "preserve_color", "seed")}
    others_b = {k: v for k, v in sb.items() if k not in ("strength", "preserve_color", "seed")}
    if others_a != others_b:
        return  # differs in something the models do not describe: teaches nothing here
    same_colour = bool(sa.get("preserve_color")) == bool(sb.get("preserve_color"))
    strength_a, strength_b = sa.get("strength"), sb.get("strength")
    if same_colour and isinstance(strength_a, int | float) and isinstance(strength_b, int | float) \
            and strength_a != strength_b:
        ev.strength.setdefault(method_a, []).append(Comparison(float(strength_a), float(strength_b), outcome,
                                                               feature))
    elif not same_colour and strength_a == strength_b:
        kept_won = outcome if sa.get("preserve_color") else 1 - outcome
        ev.colour.setdefault(method_a, []).append(kept_won)


def gather(store: FeedbackStore, profile: str) -> Evidence:
    """Every answer of ``profile`` that a model can learn from."""
    ev = Evidence()
    for row in store.query(_PAIRS, (profile,)):
        feature = (_feature(row["ia"]) + _feature(row["ib"])) / 2
        _add(ev, row["ma"], row["mb"], (json.loads(row["sa"]), json.loads(row["sb"])), _OUTCOME[row["winner"]],
             feature)
    rated = store.query(_RATED, (profile,))
    for i, a in enumerate(rated):
        for b in rated[i + 1:]:
            if (a["content_fp"], a["style_fps"]) == (b["content_fp"], b["style_fps"]):
                outcome = 0.5 if a["stars"] == b["stars"] else float(a["stars"] > b["stars"])
                _add(ev, a["method"], b["method"], (json.loads(a["settings"]), json.loads(b["settings"])),
                     outcome, (_feature(a["info"]) + _feature(b["info"])) / 2)
    return ev


def strength_model(store: FeedbackStore, profile: str, method: str) -> StrengthModel:
    return StrengthModel(gather(store, profile).strength.get(method, []))


@dataclass(frozen=True)
class Learned:
    """What a run takes from the profile: a strength (or None: the declared default) and why."""

    strength: float | None
    estimate: StrengthEstimate
    feature: float
    profile: str

    def record(self) -> dict[str, Any]:
        """For the run's ``--json`` record: where its strength came from."""
        e = self.estimate
        return {"profile": self.profile, "strength": self.strength, "answers": e.answers,
                "estimate": round(e.mean, 4), "spread": round(e.std, 4), "pair_feature": round(self.feature, 4),
                "source": "learned" if self.strength is not None else "default (not enough answers yet)"}


def learned_strength(store: FeedbackStore, profile: str, method: str, feature: float) -> Learned:
    estimate = strength_model(store, profile, method).estimate(feature)
    value = round(estimate.mean, 3) if estimate.confident else None
    return Learned(value, estimate, feature, profile)


def next_ab_strengths(store: FeedbackStore, profile: str, method: str, feature: float = 0.0) -> tuple[float, float]:
    """The two strengths to show side by side next: the question the profile's answer teaches most by."""
    a, b = strength_model(store, profile, method).next_question(feature)
    return round(a, 2), round(b, 2)


def explain(store: FeedbackStore, profile: str, methods: tuple[str, ...]) -> dict[str, Any]:
    """What was learned for ``profile`` and from how many answers, per method."""
    ev = gather(store, profile)
    out: dict[str, Any] = {"profile": profile, "methods": {}}
    for method in methods:
        comparisons = ev.strength.get(method, [])
        est = StrengthModel(comparisons).estimate(0.0)
        slope_seen = len({round(c.feature, 2) for c in comparisons}) > 1
        colour = ev.colour_taste(method)
        out["methods"][method] = {
            "strength_answers": len(comparisons), "strength_estimate": round(est.mean, 3),
            "strength_spread": round(est.std, 3), "strength_applies": est.confident,
            "depends_on_pair": slope_seen, "colour_answers": colour.answers,
            "keeps_colour": colour.decided()}
    out["method_answers"] = len(ev.methods)
    out["preferred_method"] = preferred_method(ev, methods)
    return out


def preferred_method(ev: Evidence, methods: tuple[str, ...]) -> str | None:
    """The method the answers clearly prefer to every other one (None while no method is)."""
    preferred = [m for m in methods if all(ev.method_taste(m, o).decided() is True for o in methods if o != m)]
    return preferred[0] if len(methods) > 1 and preferred else None
