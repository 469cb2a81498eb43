"""Blind A/B surveys: the statistics are right on answers with known values, the questions cover every
pair of variants with seeded sides, a questionnaire can walk them, and a tiny survey runs end to end."""

from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from impasto.cli import main
from impasto.errors import InputError
from impasto.feedback import stats
from impasto.feedback.store import FeedbackStore, RunRecord
from impasto.feedback.survey import Rendered, answer, get_question, next_question, save_survey, survey_report

# statistics -------------------------------------------------------------------------------------------


def _wilson_by_hand(k: float, n: float, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - spread) / (1 + z * z / n), (centre + spread) / (1 + z * z / n)


def test_wilson_interval_of_80_wins_in_100_matches_the_formula_and_contains_0_8():
    low, high = stats.wilson(80, 100)
    assert (low, high) == pytest.approx(_wilson_by_hand(80, 100), abs=1e-12)
    assert (low, high) == pytest.approx((0.7112, 0.8666), abs=1e-4)  # the textbook values
    assert low < 0.8 < high
    assert stats.wilson(0, 10)[0] == 0 and stats.wilson(10, 10)[1] == pytest.approx(1)  # stays inside [0, 1]
    assert stats.wilson(0, 0) == (0.0, 1.0)


def test_bradley_terry_recovers_known_strengths_from_expected_counts():
    truth = np.array([0.6, 0.3, 0.1])
    cells = {}
    for i, j in ((0, 1), (0, 2), (1, 2)):
        wins = round(1000 * truth[i] / (truth[i] + truth[j]))
        cells[(i, j)] = (wins, 1000 - wins, 0)
    fitted = stats.bradley_terry(stats.wins_matrix(3, cells), prior=0)
    assert fitted == pytest.approx(truth, abs=0.005)
    with_prior = stats.bradley_terry(stats.wins_matrix(3, cells))
    assert with_prior == pytest.approx(truth, abs=0.01) and list(np.argsort(-with_prior)) == [0, 1, 2]
    low, high = stats.bootstrap_bradley_terry(3, cells, samples=300)
    assert np.all(low <= with_prior) and np.all(with_prior <= high) and high[1] < low[0] and high[2] < low[1]


def test_bradley_terry_keeps_a_variant_that_never_won_finite():
    fitted = stats.bradley_terry(stats.wins_matrix(2, {(0, 1): (10, 0, 0)}))
    assert 0 < fitted[1] < fitted[0] and np.isfinite(fitted).all()


# surveys on synthetic answers (no rendering) -----------------------------------------------------------


def _fake_survey(store: FeedbackStore, name: str, variants: list[str], n_pairs: int, seed: int = 7) -> dict:
    described = [{"name": v, "method": "gatys", "options": {"strength": k / 10}} for k, v in enumerate(variants)]
    pairs = [(Path(f"/photos/p{i}.jpg"), Path("/paintings/s.jpg")) for i in range(n_pairs)]
    runs = [[RunRecord("gatys", {}, output_path=f"/out/{name}/p{i}_{v}.png", source="survey", label=v)
             for v in variants] for i in range(n_pairs)]
    return save_survey(store, name, "owner", Rendered(described, pairs, runs, seed))


def _answer_all(store: FeedbackStore, survey: str, choose, profile: str = "default") -> int:
    """Walk the questionnaire as a respondent would: ``choose(variant_a, variant_b, k)`` -> a/b/same/skip."""
    k = 0
    while (question := next_question(store, survey, profile)) is not None:
        assert set(question) >= {"id", "image_a", "image_b", "photo", "painting", "total", "answered"}
        assert "variant_a" not in question and question["answered"] == k  # blind, and it counts progress
        labels = store.run(question["run_a"])["label"], store.run(question["run_b"])["label"]
        answer(store, survey, question["id"], choose(*labels, k), profile=profile)
        k += 1
    return k


def test_a_method_that_wins_80_of_100_gets_the_wilson_interval_and_the_higher_strength(tmp_path):
    with FeedbackStore(tmp_path / "f.sqlite3") as store:
        _fake_survey(store, "eighty", ["strong", "weak"], 100)
        asked = _answer_all(store, "eighty", lambda a, b, k: ("a" if a == "strong" else "b") if k < 80 else
                            ("a" if a == "weak" else "b"))
        report = survey_report(store, "eighty", samples=300)
    assert asked == 100 and report["answers"] == 100 and report["skipped"] == 0
    (matchup,) = report["matchups"]
    assert (matchup["a"], matchup["b"], matchup["wins"], matchup["losses"]) == ("strong", "weak", 80, 20)
    assert matchup["rate"] == 0.8 and (matchup["low"], matchup["high"]) == pytest.approx(_wilson_by_hand(80, 100))
    assert report["overall"]["weak"]["rate"] == pytest.approx(0.2)
    bt = report["bradley_terry"]
    p_strong = bt["strong"]["strength"] / (bt["strong"]["strength"] + bt["weak"]["strength"])
    assert p_strong == pytest.approx(0.8, abs=0.01)  # one virtual tie: 80.5 / 101
    assert bt["weak"]["high"] < bt["strong"]["low"]


def test_ties_count_half_and_skips_are_left_out(tmp_path):
    script = ["a_wins"] * 4 + ["same"] * 2 + ["skip"] * 2 + ["b_wins"] * 2  # x's view: 4 wins, 2 ties, 2 losses

    def choose(a: str, b: str, k: int) -> str:
        step = script[k]
        if step in ("same", "skip"):
            return step
        x_wins = step == "a_wins"
        return "a" if (a == "x") == x_wins else "b"

    with FeedbackStore(tmp_path / "f.sqlite3") as store:
        _fake_survey(store, "ties", ["x", "y"], 10)
        _answer_all(store, "ties", choose)
        report = survey_report(store, "ties", samples=50)
    x = report["overall"]["x"]
    assert (x["wins"], x["losses"], x["ties"], x["n"]) == (4, 2, 2, 8) and x["rate"] == pytest.approx(5 / 8)
    assert (x["low"], x["high"]) == pytest.approx(_wilson_by_hand(5, 8))
    assert report["skipped"] == 2 and report["answers"] == 10


def test_questions_cover_every_pair_of_variants_on_every_image_with_seeded_sides(tmp_path):
    with FeedbackStore(tmp_path / "f.sqlite3") as store:
        summary = _fake_survey(store, "three", ["u", "v", "w"], 4, seed=3)
        again = _fake_survey(store, "three-again", ["u", "v", "w"], 4, seed=3)
        rows = store.query("SELECT s.name, i.position, i.pair_index, i.variant_a, i.variant_b FROM survey_items i "
                           "JOIN surveys s ON s.id = i.survey_id ORDER BY s.name, i.position")
    assert summary["questions"] == again["questions"] == 4 * 3
    first = [r for r in rows if r["name"] == "three"]
    second = [(r["pair_index"], r["variant_a"], r["variant_b"]) for r in rows if r["name"] == "three-again"]
    assert [(r["pair_index"], r["variant_a"], r["variant_b"]) for r in first] == second  # the seed rebuilds it
    for pair in range(4):
        asked = [frozenset((r["variant_a"], r["variant_b"])) for r in first if r["pair_index"] == pair]
        assert sorted(map(sorted, asked)) == [["u", "v"], ["u", "w"], ["v", "w"]]
    assert {r["variant_a"] for r in first} == {"u", "v", "w"}  # sides are drawn, not always in list order
    assert [r["pair_index"] for r in first] != sorted(r["pair_index"] for r in first)  # and so is the order


def test_answering_again_replaces_each_respondent_has_their_own_progress_and_bad_answers_are_refused(tmp_path):
    with FeedbackStore(tmp_path / "f.sqlite3") as store:
        _fake_survey(store, "s", ["x", "y"], 2)
        first = next_question(store, "s", "ann")
        assert get_question(store, "s", first["id"], "ann") == first
        answer(store, "s", first["id"], "a", profile="ann")
        answer(store, "s", first["id"], "b", profile="ann")
        assert store.query("SELECT winner FROM choices") == [{"winner": "b"}]
        assert next_question(store, "s", "ann")["answered"] == 1
        assert next_question(store, "s", "bob")["id"] == first["id"]  # bob has answered nothing
        with pytest.raises(InputError, match="winner"):
            answer(store, "s", first["id"], "left")
        with pytest.raises(InputError, match="no question"):
            answer(store, "s", 10_000, "a")
        with pytest.raises(InputError, match="no question"):
            get_question(store, "s", 10_000)
        with pytest.raises(InputError, match="no survey"):
            next_question(store, "missing")
        with pytest.raises(InputError, match="exists already"):
            _fake_survey(store, "s", ["x", "y"], 1)
        assert survey_report(store, "s", profile="bob", samples=10)["answers"] == 0


# end to end -------------------------------------------------------------------------------------------


def test_a_tiny_survey_renders_records_asks_and_reports_with_html(tmp_path, capsys):
    db = tmp_path / "f.sqlite3"
    rng = np.random.default_rng(0)
    photos = []
    for k in range(2):
        photos.append(tmp_path / f"photo{k}.png")
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(photos[-1])
    from impasto import bundled

    painting = tmp_path / ("painting" + bundled.style("picabia_udnie").suffix)  # one the fast model paints
    painting.write_bytes(bundled.style("picabia_udnie").read_bytes())
    other = tmp_path / "other.png"
    Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(other)
    assert main(["survey", "create", "--name", "mislabelled", "--photos", str(photos[0]), "--paintings", str(other),
                 "--method", "fast", "--method", "adain", "--db", str(db), "--quiet"]) == 2
    assert "paints only its own styles" in capsys.readouterr().err
    code = main(["survey", "create", "--name", "tiny", "--photos", *map(str, photos), "--paintings", str(painting),
                 "--method", "fast", "--method", "adain", "--setting", "adain:strength=0.5", "--size", "32",
                 "--seed", "1", "--db", str(db), "--json", "--quiet"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["images"] == 6 and summary["questions"] == 6
    folder = Path(summary["folder"])
    assert folder.parent == tmp_path / "surveys" and len(list(folder.rglob("*.png"))) == 6
    with FeedbackStore(db) as store:
        runs = store.history("default", source="survey")
        assert len(runs) == 6 and {r["label"] for r in runs} == {"fast", "adain", "adain:strength=0.5"}
        assert all(max(Image.open(r["output_path"]).size) == 32 for r in runs)
        assert {r["settings"]["strength"] for r in runs if r["method"] == "adain"} == {1.0, 0.5}
    for _ in range(6):
        assert main(["survey", "next", "tiny", "--db", str(db)]) == 0
        question = json.loads(capsys.readouterr().out)["question"]
        assert main(["survey", "answer", "tiny", str(question["id"]), "a", "--db", str(db)]) == 0
    assert main(["survey", "next", "tiny", "--db", str(db)]) == 0
    assert json.loads(capsys.readouterr().out) == {"question": None}
    page = tmp_path / "report" / "tiny.html"
    page.parent.mkdir()
    assert main(["survey", "report", "tiny", "--json", "--html", str(page), "--bootstrap", "50", "--db", str(db)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["answers"] == 6 and sum(v["wins"] for v in report["overall"].values()) == 6
    sources = [html.unescape(s) for s in re.findall(r'<img src="([^"]+)"', page.read_text())]
    assert len(sources) == 2 * (2 + 3) and all((page.parent / s).is_file() for s in sources)
    assert "Bradley-Terry" in page.read_text() and "Wilson" in page.read_text()
    assert main(["feedback", "forget", "--profile", "default", "--db", str(db)]) == 0
    assert not folder.exists() and photos[0].is_file()  # the survey's images go, the user's photos stay


def test_survey_create_refuses_bad_input_with_one_line(tmp_path, capsys):
    photo = tmp_path / "p.png"
    Image.new("RGB", (16, 16)).save(photo)
    base = ["survey", "create", "--photos", str(photo), "--paintings", str(photo), "--db", str(tmp_path / "f.db")]
    for extra, message in ((["--name", "a b", "--method", "fast", "--method", "adain"], "survey name"),
                           (["--name", "one", "--method", "fast"], "at least two"),
                           (["--name", "dup", "--method", "fast", "--method", "fast"], "must differ"),
                           (["--name", "bad", "--method", "fast", "--setting", "fast:strength=2"], "strength")):
        assert main([*base, *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


def test_a_variant_may_name_its_method_and_its_own_size_as_the_help_shows():
    from impasto.feedback.survey import parse_variant

    name, options = parse_variant("soft:method=gatys,strength=0.2", 512)
    assert name == "soft" and options.size == 512 and options.strength == 0.2
    name, options = parse_variant("big:method=adain,max_size=256", 512)
    assert name == "big" and options.max_size == 256
    name, options = parse_variant("adain:max_size=64", 512)
    assert name == "adain:max_size=64" and options.max_size == 64
    _, options = parse_variant("adain", 128)
    assert options.max_size == 128
