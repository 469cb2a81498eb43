"""The web UI's feedback (issues #21, #22): every finished job is recorded in the feedback store and can be
rated and seen in the history; A/B pairs differ only in strength, hide their settings until answered and
record the answer as a choice the taste model learns from; survey questionnaires serve their images by
question id only, from their own folder only."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
import torch

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient

from impasto import bundled
from impasto.feedback.fingerprint import file_fingerprint, pixels_fingerprint
from impasto.feedback.store import FeedbackStore, RunRecord, StoreError
from impasto.feedback.survey import Rendered, save_survey
from impasto.io import encode_png, load_image, load_image_bytes, resize_long, save_image
from impasto.options import record as options_record
from impasto.web import ab
from impasto.web.app import Limits, create_app
from web_helpers import wait_job as _wait

LOCAL = "http://127.0.0.1"  # the Host a browser on this machine sends; TestClient's "testserver" is refused
STYLE = "picabia_udnie"


@pytest.fixture(scope="module")
def photo_png() -> bytes:
    return encode_png(resize_long(load_image(bundled.photo("chelsea")), 48))


def fake_runner(job, progress):
    """Fast and deterministic: a grey image whose brightness is the strength, and the contract's record."""
    strength = float(getattr(job.options, "strength", None) or 0.5)
    return torch.full((1, 3, 24, 32), strength), {**options_record(job.options), "seconds": 0.01}


@pytest.fixture()
def db(tmp_path) -> Path:
    return tmp_path / "feedback.sqlite3"


@pytest.fixture()
def app(tmp_path, db):
    return create_app(limits=Limits(max_size=256), results_dir=tmp_path / "r", runner=fake_runner, db_path=db)


@pytest.fixture()
def client(app):
    with TestClient(app, base_url=LOCAL) as c:
        yield c


def _submit(client: TestClient, photo: bytes, route: str = "/api/jobs", **data: str):
    fields = {"method": "adain", "size": "64", **data}
    if fields["method"] != "fast":  # fast paints its own styles and refuses a painting
        fields.setdefault("style_name", STYLE)
    return client.post(route, files={"content": ("cat.png", photo, "image/png")}, data=fields)


# recording, rating, history --------------------------------------------------------------------------


def test_a_finished_web_job_is_recorded_with_fingerprints_and_can_be_rated_and_seen_in_history(client, photo_png,
                                                                                                 db, tmp_path):
    resp = _submit(client, photo_png, profile="ann", strength="0.7")
    assert resp.status_code == 202, resp.text
    status = _wait(client, resp.json()["id"])
    assert status["state"] == "done" and isinstance(status["run_id"], int)
    with FeedbackStore(db) as store:
        run = store.run(status["run_id"])
    result = tmp_path / "r" / f"{status['id']}.png"
    assert run["profile"] == "ann" and run["source"] == "web" and run["method"] == "adain"
    assert run["settings"]["strength"] == 0.7
    assert run["content_fp"] == pixels_fingerprint(load_image_bytes(photo_png))
    assert run["style_fps"] == [pixels_fingerprint(load_image(bundled.style(STYLE)))]
    assert run["output_path"] == str(result.resolve()) and run["output_hash"] == file_fingerprint(result)
    assert isinstance(run["info"]["pair_feature"], float)  # adain takes a painting: the learner's feature

    rated = client.post(f"/api/runs/{status['run_id']}/rating", json={"stars": 4})
    assert rated.status_code == 200 and rated.json() == {"run_id": status["run_id"], "stars": 4}
    history = client.get("/api/history", params={"profile": "ann"}).json()
    assert [(r["id"], r["stars"], r["has_image"]) for r in history["runs"]] == [(status["run_id"], 4, True)]
    assert history["runs"][0]["settings"]["strength"] == 0.7 and "output_path" not in history["runs"][0]
    assert client.get("/api/history").json()["runs"] == []  # the default profile has no runs
    image = client.get(f"/api/runs/{status['run_id']}/image.png")
    assert image.status_code == 200 and image.content == result.read_bytes()


@pytest.mark.parametrize("body", [{"stars": 0}, {"stars": 6}, {"stars": "x"}, {"stars": 3.5}, {"stars": True}, {},
                                  {"stars": None}])
def test_a_rating_outside_one_to_five_stars_is_422_with_one_line(client, db, body):
    with FeedbackStore(db) as store:
        run_id = store.add_run("default", RunRecord("adain", {}))
    resp = client.post(f"/api/runs/{run_id}/rating", json=body)
    assert resp.status_code == 422 and isinstance(resp.json()["detail"], str) and "1 to 5" in resp.json()["detail"]
    with FeedbackStore(db) as store:
        assert store.run(run_id)["stars"] is None


def test_ratings_of_unknown_runs_are_404_and_a_form_rating_is_stored(client, db):
    assert client.post("/api/runs/999/rating", json={"stars": 3}).status_code == 404
    assert client.post("/api/runs/abc/rating", json={"stars": 3}).status_code == 404
    assert client.get("/api/runs/999/image.png").status_code == 404
    with FeedbackStore(db) as store:
        run_id = store.add_run("default", RunRecord("adain", {}, output_path="/etc/passwd"))
    assert client.post(f"/api/runs/{run_id}/rating", data={"stars": "5"}).status_code == 200
    assert client.get(f"/api/runs/{run_id}").json()["stars"] == 5
    assert client.get(f"/api/runs/{run_id}/image.png").status_code == 404  # a path outside the results folder


def test_unicode_digits_and_deeply_nested_json_are_404_or_422_never_a_server_error(client):
    assert client.get("/api/runs/\u00b2").status_code == 404  # '²'.isdigit() is True, int('²') fails
    assert client.post("/api/runs/\u00b2/rating", json={"stars": 3}).status_code == 404
    assert client.post("/api/runs/1/rating", json={"stars": "\u00b2"}).status_code == 422
    assert client.get("/api/history", params={"limit": "\u00b2"}).status_code == 422
    nested = client.post("/api/runs/1/rating", content=b"[" * 60000, headers={"content-type": "application/json"})
    assert nested.status_code == 422 and "not valid JSON" in nested.json()["detail"]


def test_bad_profiles_and_paging_are_422_with_one_line(client, photo_png):
    for params in ({"profile": " padded "}, {"limit": "0"}, {"limit": "many"}, {"offset": "-1"}):
        resp = client.get("/api/history", params=params)
        assert resp.status_code == 422 and isinstance(resp.json()["detail"], str), params
    resp = _submit(client, photo_png, profile="x" * 65)
    assert resp.status_code == 422 and "profile" in resp.json()["detail"]


def test_a_broken_database_loses_no_finished_result(client, app, photo_png, caplog):
    def broken(*args, **kwargs):
        raise StoreError("feedback.sqlite3: the feedback database is damaged")

    app.state.feedback.add_run = broken
    with caplog.at_level(logging.WARNING, logger="impasto.web"):
        status = _wait(client, _submit(client, photo_png).json()["id"])
    assert status["state"] == "done" and status["run_id"] is None and status["error"] is None
    assert client.get(f"/api/jobs/{status['id']}/result.png").status_code == 200
    lines = [r.getMessage() for r in caplog.records if "not recorded" in r.getMessage()]
    assert len(lines) == 1 and "damaged" in lines[0] and "\n" not in lines[0]


def test_a_cross_site_rating_is_refused_by_the_guard(client):
    resp = client.post("/api/runs/1/rating", json={"stars": 5}, headers={"origin": "https://evil.example"})
    assert resp.status_code == 403


# A/B -------------------------------------------------------------------------------------------------


def _wait_pair(client: TestClient, pair_id: str, timeout: float = 60) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        pair = client.get(f"/api/ab/{pair_id}").json()
        if pair["ready"]:
            return pair
        time.sleep(0.05)
    raise AssertionError(f"pair {pair_id} did not finish")


def test_an_ab_pair_differs_in_strength_hides_settings_until_answered_and_records_the_choice(client, app, db,
                                                                                            photo_png):
    from impasto.feedback.taste import gather, next_ab_strengths, pair_feature

    resp = _submit(client, photo_png, "/api/ab", profile="bob")
    assert resp.status_code == 202, resp.text
    pair = _wait_pair(client, resp.json()["id"])
    for side in ("left", "right"):
        assert set(pair[side]) == {"job", "state", "error"}  # no settings, no run id (which would lead to them)
    jobs = [app.state.manager.get(pair[s]["job"]) for s in ("left", "right")]
    strengths = [j.options.strength for j in jobs]
    with FeedbackStore(db) as store:  # the profile's most informative question, asked before any answer
        feature = pair_feature(load_image_bytes(photo_png), load_image(bundled.style(STYLE)))
        assert sorted(strengths) == sorted(next_ab_strengths(store, "bob", "adain", feature))
    assert strengths[0] != strengths[1] and jobs[0].options.max_size == jobs[1].options.max_size == 64
    # the jobs' own status hides the run (whose record holds the settings) until the answer
    assert [client.get(f"/api/jobs/{j.id}").json()["run_id"] for j in jobs] == [None, None]

    answered = client.post(f"/api/ab/{pair['id']}/answer", json={"answer": "left"})
    assert answered.status_code == 200, answered.text
    shown = answered.json()
    assert [shown[s]["settings"]["strength"] for s in ("left", "right")] == strengths
    with FeedbackStore(db) as store:
        choices = store.query("SELECT run_a, run_b, winner FROM choices")
        assert choices == [{"run_a": jobs[0].run_id, "run_b": jobs[1].run_id, "winner": "a"}]
        learned = gather(store, "bob").strength["adain"]  # the answer is evidence the strength model reads
        assert [(c.a, c.b, c.outcome) for c in learned] == [(strengths[0], strengths[1], 1.0)]
    assert client.post(f"/api/ab/{pair['id']}/answer", json={"answer": "right"}).status_code == 409
    assert client.get(f"/api/ab/{pair['id']}").json()["answer"] == "left"
    assert [client.get(f"/api/jobs/{j.id}").json()["run_id"] for j in jobs] == [j.run_id for j in jobs]


def test_ab_requests_are_validated_like_jobs(client, photo_png):
    assert _submit(client, photo_png, "/api/ab", method="magic").status_code == 422
    assert _submit(client, photo_png, "/api/ab", method="gatys", style_name="").status_code == 422
    assert _submit(client, b"not an image", "/api/ab").status_code == 415
    assert _submit(client, photo_png, "/api/ab", size="5000").status_code == 422
    chosen = _submit(client, photo_png, "/api/ab", strength="0.3")  # the pair picks its strengths: not ignored
    assert chosen.status_code == 422 and "picks its two strengths itself" in chosen.json()["detail"]
    assert client.get("/api/ab/nope").status_code == 404
    assert client.post("/api/ab/nope/answer", json={"answer": "left"}).status_code == 404
    pair = _wait_pair(client, _submit(client, photo_png, "/api/ab", method="fast").json()["id"])
    bad = client.post(f"/api/ab/{pair['id']}/answer", json={"answer": "up"})
    assert bad.status_code == 422 and "left, right, same, skip" in bad.json()["detail"]
    assert client.post(f"/api/ab/{pair['id']}/answer", json={"answer": "skip"}).status_code == 200


def test_ab_sides_are_drawn_by_the_server_and_pairs_are_capped_without_images(monkeypatch):
    monkeypatch.setattr(ab.secrets, "randbelow", lambda n: 0)
    assert ab.choose_sides((0.2, 0.8)) == (0.2, 0.8)
    monkeypatch.setattr(ab.secrets, "randbelow", lambda n: 1)
    assert ab.choose_sides((0.2, 0.8)) == (0.8, 0.2)
    book = ab.ABBook(cap=2)
    pairs = [ab.ABPair("p", "adain", 0.0, ("j1", "j2"), (0.2, 0.8)) for _ in range(3)]
    for pair in pairs:
        book.add(pair)
    assert book.get(pairs[0].id) is None and book.get(pairs[2].id) is pairs[2] and len(book.pairs) == 2
    assert not any(isinstance(v, torch.Tensor) for v in vars(pairs[2]).values())


# surveys ---------------------------------------------------------------------------------------------


def _survey(store: FeedbackStore, root: Path, name: str, outside: Path | None = None) -> dict:
    """A one-question survey of two tiny real images in ``root/name`` (``outside``: side b's file lies
    elsewhere, as an edited database could say)."""
    folder = root / name
    (folder / "p000").mkdir(parents=True)
    paths = [save_image(torch.full((1, 3, 8, 8), v), folder / "p000" / f"v0{k}.png") for k, v in enumerate((0.2, 0.9))]
    if outside is not None:
        paths[1] = outside
    described = [{"name": v, "method": "adain", "options": {"strength": s}} for v, s in (("soft", 0.3), ("bold", 1.0))]
    runs = [[RunRecord("adain", {"strength": d["options"]["strength"]}, output_path=str(p), source="survey",
                       label=d["name"]) for d, p in zip(described, paths, strict=True)]]
    return save_survey(store, name, "owner", Rendered(described, [(Path("/p.jpg"), Path("/s.jpg"))], runs, 3, folder))


def _question_id(store: FeedbackStore, name: str) -> int:
    return store.query("SELECT i.id FROM survey_items i JOIN surveys s ON s.id = i.survey_id WHERE s.name = ?",
                       (name,))[0]["id"]


def test_a_survey_question_is_blind_served_by_id_and_its_answer_recorded(tmp_path, db):
    with FeedbackStore(db) as store:
        _survey(store, tmp_path / "surveys", "s1")
        _survey(store, tmp_path / "surveys", "s2")
        other = _question_id(store, "s2")
    app = create_app(results_dir=tmp_path / "r", runner=fake_runner, db_path=db)
    with TestClient(app, base_url=LOCAL) as client:
        assert client.get("/survey/s1").status_code == 200 and client.get("/survey/nope").status_code == 404
        nxt = client.get("/api/surveys/s1/next", params={"profile": "carol"})
        body = nxt.json()
        assert body["done"] is False and body["question"]["answered"] == 0 and body["question"]["total"] == 1
        for secret in ("soft", "bold", "strength", str(tmp_path), "run_a", "variant"):
            assert secret not in nxt.text, secret
        qid = body["question"]["id"]
        with FeedbackStore(db) as store:
            files = [Path(store.run(r)["output_path"]).read_bytes() for r in store.query(
                "SELECT run_a, run_b FROM survey_items WHERE id = ?", (qid,))[0].values()]
        for side, data in zip("ab", files, strict=True):
            image = client.get(f"/api/surveys/s1/questions/{qid}/{side}.png")
            assert image.status_code == 200 and image.content == data
        assert client.post(f"/api/surveys/s1/questions/{qid}/answer", json={"answer": "left"}).status_code == 422
        done = client.post(f"/api/surveys/s1/questions/{qid}/answer?profile=carol", json={"answer": "b"})
        assert done.status_code == 200 and done.json()["done"] is True
        assert client.get("/api/surveys/s1/next").json()["done"] is False  # the default profile has not answered
    with FeedbackStore(db) as store:
        assert store.query("SELECT c.winner, p.name FROM choices c JOIN profiles p ON p.id = c.profile_id "
                           "WHERE c.item_id = ?", (qid,)) == [{"winner": "b", "name": "carol"}]
        assert other != qid


def test_survey_routes_refuse_bad_ids_other_surveys_questions_and_files_outside_the_folder(tmp_path, db):
    secret = save_image(torch.zeros(1, 3, 4, 4), tmp_path / "secret.png")
    with FeedbackStore(db) as store:
        _survey(store, tmp_path / "surveys", "s1")
        _survey(store, tmp_path / "surveys", "s2")
        _survey(store, tmp_path / "surveys", "leaky", outside=secret)
        own, other, leaky = (_question_id(store, n) for n in ("s1", "s2", "leaky"))
    app = create_app(results_dir=tmp_path / "r", runner=fake_runner, db_path=db)
    with TestClient(app, base_url=LOCAL) as client:
        assert client.get(f"/api/surveys/s1/questions/{other}/a.png").status_code == 404  # s2's question
        assert client.post(f"/api/surveys/s1/questions/{other}/answer", json={"answer": "a"}).status_code == 404
        for bad in ("abc", "0", "-1", "1e3", "99999"):
            assert client.get(f"/api/surveys/s1/questions/{bad}/a.png").status_code == 404, bad
        assert client.get(f"/api/surveys/s1/questions/{own}/c.png").status_code == 404
        assert client.get("/api/surveys/nope/next").status_code == 404
        assert client.get("/api/surveys/..%2F..%2Fetc/next").status_code == 404
        assert client.get(f"/api/surveys/leaky/questions/{leaky}/a.png").status_code == 200
        assert client.get(f"/api/surveys/leaky/questions/{leaky}/b.png").status_code == 404  # outside its folder
        resp = client.post(f"/api/surveys/s1/questions/{own}/answer", json={"answer": "a"},
                           headers={"origin": "https://evil.example"})
        assert resp.status_code == 403
    with FeedbackStore(db) as store:
        assert store.query("SELECT count(*) AS n FROM choices") == [{"n": 0}]


def test_with_recording_off_jobs_still_finish_unrecorded_and_ab_is_refused(tmp_path, db, photo_png, monkeypatch):
    monkeypatch.setenv("IMPASTO_NO_RECORD", "1")
    app = create_app(results_dir=tmp_path / "r", runner=fake_runner, db_path=db)
    with TestClient(app, base_url=LOCAL) as client:
        status = _wait(client, _submit(client, photo_png).json()["id"])
        assert status["state"] == "done" and status["run_id"] is None
        refused = _submit(client, photo_png, "/api/ab")
        assert refused.status_code == 409 and "IMPASTO_NO_RECORD" in refused.json()["detail"]
    with FeedbackStore(db) as store:
        assert store.query("SELECT count(*) AS n FROM runs") == [{"n": 0}]
