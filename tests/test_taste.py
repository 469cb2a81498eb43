"""Defaults that learn a profile's taste: the learner recovers known preferences, the evidence is read from
the feedback store (A/B choices and ratings), `--strength auto` uses it and says so, no evidence changes
nothing, and `impasto feedback explain` / `prefer` work from the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from impasto.cli import main
from impasto.feedback import taste
from impasto.feedback.learn import BinaryTaste, Comparison, StrengthModel
from impasto.feedback.store import FeedbackStore, RunRecord


def _answer(a: float, b: float, star: float, rng: np.random.Generator, sharpness: float = 3.0) -> float:
    ua, ub = -((a - star) / 0.3) ** 2, -((b - star) / 0.3) ** 2
    return float(rng.random() < 1 / (1 + np.exp(-sharpness * (ua - ub))))


def test_the_learner_recovers_a_known_preferred_strength_from_noisy_answers():
    rng = np.random.default_rng(0)
    model = StrengthModel()
    assert not model.estimate().confident
    for _ in range(25):
        a, b = model.next_question()
        model.update(Comparison(a, b, _answer(a, b, 0.27, rng)))
    est = model.estimate()
    assert abs(est.mean - 0.27) < 0.07 and est.confident and est.std < 0.1


def test_the_learner_recovers_a_preference_that_depends_on_the_pair():
    rng = np.random.default_rng(1)
    model = StrengthModel()
    for i in range(60):
        x = (-0.5, 0.0, 0.5)[i % 3]
        a, b = model.next_question(x)
        model.update(Comparison(a, b, _answer(a, b, 0.5 + 0.4 * x, rng), x))
    assert abs(model.estimate(-0.5).mean - 0.3) < 0.1 and abs(model.estimate(0.5).mean - 0.7) < 0.1


def test_active_questions_straddle_the_current_belief():
    model = StrengthModel([Comparison(0.2, 0.8, 1.0)] * 4)  # low strengths preferred
    low, high = model.next_question()
    assert low < 0.5 < high + 0.2 and model.estimate().mean < 0.5


def test_a_yes_no_taste_is_decided_only_on_clear_evidence():
    assert BinaryTaste(2, 1).decided() is None  # too few answers
    assert BinaryTaste(9, 1).decided() is True and BinaryTaste(1, 9).decided() is False
    assert BinaryTaste(5, 5).decided() is None


def _seed_choices(store: FeedbackStore, profile: str, star: float, n: int = 20, method: str = "fast") -> None:
    """A profile that prefers ``star``, answering the learner's own questions through the store."""
    rng = np.random.default_rng(2)
    for _ in range(n):
        a, b = taste.next_ab_strengths(store, profile, method)
        ids = [store.add_run(profile, RunRecord(method, {"strength": s, "preserve_color": None, "style_index": 0},
                                                content_fp="photo", style_fps=[])) for s in (a, b)]
        outcome = _answer(a, b, star, rng)
        store.choose(profile, ids[0], ids[1], "a" if outcome else "b")


def test_evidence_comes_from_choices_and_from_ratings_of_the_same_pair(tmp_path):
    with FeedbackStore(tmp_path / "db.sqlite3") as store:
        _seed_choices(store, "ann", 0.8, n=10)
        low = store.add_run("ann", RunRecord("fast", {"strength": 0.2, "style_index": 0}, content_fp="p2"))
        high = store.add_run("ann", RunRecord("fast", {"strength": 0.9, "style_index": 0}, content_fp="p2"))
        other = store.add_run("ann", RunRecord("fast", {"strength": 0.5, "style_index": 0}, content_fp="elsewhere"))
        store.rate(low, 2)
        store.rate(high, 5)
        store.rate(other, 1)
        kept = store.add_run("ann", RunRecord("adain", {"strength": 1.0, "preserve_color": "luminance"},
                                              content_fp="p3"))
        plain = store.add_run("ann", RunRecord("adain", {"strength": 1.0, "preserve_color": None}, content_fp="p3"))
        store.choose("ann", kept, plain, "a")
        ev = taste.gather(store, "ann")
        assert len(ev.strength["fast"]) == 11  # 10 choices + 1 from the ratings (other pair: no comparison)
        assert ev.strength["fast"][-1] == Comparison(0.2, 0.9, 0.0, 0.0)
        assert ev.colour["adain"] == [1.0]
        assert taste.gather(store, "bob").strength == {}  # profiles are separate


def test_no_answers_means_exactly_todays_default_and_no_measuring(tmp_path, monkeypatch, capsys, small_pair):
    from impasto.io import save_image

    photo = tmp_path / "p.png"
    save_image(small_pair[0], photo)
    monkeypatch.setattr(taste, "pair_feature", lambda *a: pytest.fail("measured a pair with no evidence"))
    assert main(["stylize", str(photo), "--method", "fast", "-o", str(tmp_path / "o.png"), "--json", "-q"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["options"]["strength"] == 1.0 and "learned" not in record


def test_strength_auto_uses_the_learned_value_and_says_so_in_the_json_record(tmp_path, capsys, small_pair):
    from impasto.feedback.store import default_db_path
    from impasto.io import save_image

    with FeedbackStore(default_db_path()) as store:
        _seed_choices(store, "default", 0.3, n=20)
    photo = tmp_path / "p.png"
    save_image(small_pair[0], photo)
    assert main(["stylize", str(photo), "--method", "fast", "--strength", "auto", "-o", str(tmp_path / "a.png"),
                 "--json", "-q"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["learned"]["source"] == "learned" and record["learned"]["answers"] == 20
    assert abs(record["options"]["strength"] - 0.3) < 0.1 and record["options"]["strength"] == record["learned"][
        "strength"]
    # with enough evidence it is also the default; a number given by hand still wins
    assert main(["stylize", str(photo), "--method", "fast", "-o", str(tmp_path / "b.png"), "--json", "-q"]) == 0
    assert json.loads(capsys.readouterr().out)["learned"]["source"] == "learned"
    assert main(["stylize", str(photo), "--method", "fast", "--strength", "0.9", "-o", str(tmp_path / "c.png"),
                 "--json", "-q"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["options"]["strength"] == 0.9 and "learned" not in record


def test_strength_auto_without_enough_answers_keeps_the_default_and_says_why(tmp_path, capsys, small_pair):
    from impasto.io import save_image

    photo = tmp_path / "p.png"
    save_image(small_pair[0], photo)
    assert main(["stylize", str(photo), "--method", "fast", "--strength", "auto", "-o", str(tmp_path / "a.png"),
                 "--json", "-q"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["options"]["strength"] == 1.0 and record["learned"]["source"].startswith("default")


def test_explain_on_an_empty_and_a_trained_profile(capsys):
    from impasto.feedback.store import default_db_path

    assert main(["feedback", "explain"]) == 0
    assert "fast: no strength answers yet" in capsys.readouterr().out
    with FeedbackStore(default_db_path()) as store:
        _seed_choices(store, "default", 0.7, n=20)
    assert main(["feedback", "explain", "--json"]) == 0
    fast = json.loads(capsys.readouterr().out)["methods"]["fast"]
    assert fast["strength_answers"] == 20 and fast["strength_applies"] and abs(fast["strength_estimate"] - 0.7) < 0.1
    assert main(["feedback", "explain"]) == 0
    assert "from 20 answers, applied by default" in capsys.readouterr().out


def test_prefer_records_an_ab_choice_between_two_outputs(tmp_path, capsys, small_pair):
    from impasto.io import save_image

    photo = tmp_path / "p.png"
    save_image(small_pair[0], photo)
    for name, strength in (("weak.png", "0.3"), ("strong.png", "0.9")):
        assert main(["stylize", str(photo), "--method", "fast", "--strength", strength, "-o", str(tmp_path / name),
                     "-q"]) == 0
    assert main(["feedback", "prefer", str(tmp_path / "weak.png"), str(tmp_path / "strong.png")]) == 0
    assert main(["feedback", "explain", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["methods"]["fast"]["strength_answers"] == 1
    assert main(["feedback", "prefer", str(tmp_path / "weak.png"), str(tmp_path / "nope.png")]) == 2
    assert "no recorded run" in capsys.readouterr().err


def test_clear_colour_and_method_tastes_become_the_defaults_and_the_record_says_so(tmp_path, capsys, small_pair):
    from impasto.feedback.store import default_db_path
    from impasto.io import save_image

    photo, painting = save_image(small_pair[0], tmp_path / "p.png"), save_image(small_pair[1], tmp_path / "s.png")
    with FeedbackStore(default_db_path()) as store:
        for i in range(6):  # adain over both other methods, and with the photo's colours kept
            runs = {m: store.add_run("default", RunRecord(m, {"strength": 1.0}, content_fp=f"c{i}"))
                    for m in ("gatys", "fast", "adain")}
            store.choose("default", runs["adain"], runs["gatys"], "a")
            store.choose("default", runs["fast"], runs["adain"], "b")
            kept = store.add_run("default", RunRecord("adain", {"strength": 1.0, "preserve_color": "luminance"},
                                                      content_fp=f"k{i}"))
            plain = store.add_run("default", RunRecord("adain", {"strength": 1.0, "preserve_color": None},
                                                       content_fp=f"k{i}"))
            store.choose("default", plain, kept, "b")
    base = ["stylize", str(photo), "-s", str(painting), "--max-size", "32", "-o", str(tmp_path / "o.png"), "--json",
            "-q"]
    assert main(base) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["method"] == "adain" and record["options"]["preserve_color"] == "luminance"
    assert record["learned_taste"]["method"]["answers"] == 12 and record["learned_taste"]["colour"]["answers"] == 6
    assert main([*base, "--method", "adain", "--preserve-color", "histogram"]) == 0  # what is given wins
    record = json.loads(capsys.readouterr().out)
    assert record["options"]["preserve_color"] == "histogram" and "learned_taste" not in record
    assert main(["feedback", "explain", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["preferred_method"] == "adain"


def test_the_pair_feature_measures_photos_and_paintings_thinner_than_vgg_needs():
    import math

    import torch

    from impasto.feedback.taste import pair_feature

    gen = torch.Generator().manual_seed(0)
    thin, wide, square = (torch.rand(1, 3, h, w, generator=gen) for h, w in ((2, 128), (128, 1), (96, 96)))
    assert all(math.isfinite(pair_feature(a, b)) for a, b in ((thin, square), (square, wide), (thin, wide)))
