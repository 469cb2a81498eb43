"""End to end in a real headless Chromium (Debian's, driven by Playwright): upload a photo, pick a
bundled painting, stylize, wait for the result and download the PNG; rate a result and answer an A/B
question with keyboard shortcuts, rate from the history page, answer a blind survey, and find each in the
feedback store."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def db_path(tmp_path_factory) -> Path:
    """The server's feedback database: explicit, since a module fixture starts before the per-test home."""
    return tmp_path_factory.mktemp("feedback") / "impasto.sqlite3"


@pytest.fixture(scope="module")
def server(tmp_path_factory, db_path):
    uvicorn = pytest.importorskip("uvicorn")
    from impasto.web.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(results_dir=tmp_path_factory.mktemp("results"), db_path=db_path)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


def _playwright():
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium); browser test not run")
    return pytest.importorskip("playwright.sync_api")


def _launch(p):
    return p.chromium.launch(executable_path=CHROMIUM, args=[
        "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"])


def test_upload_stylize_and_download_in_chromium(server, tmp_path):
    sync_api = _playwright()
    from impasto import bundled
    from impasto.io import load_image, resize_long, save_image

    photo = save_image(resize_long(load_image(bundled.photo("chelsea")), 160), tmp_path / "cat.png")
    with sync_api.sync_playwright() as p:
        browser = _launch(p)
        try:
            page = browser.new_page(accept_downloads=True)
            page.goto(server)
            page.set_input_files("#content", str(photo))
            page.click("#styles img[data-name='picabia_udnie']")
            page.fill("#size", "128")
            page.click("#go")
            page.wait_for_selector("#download:not(.hidden)", timeout=120_000)
            assert "Done" in page.inner_text("#status")
            with page.expect_download() as info:
                page.click("#download")
            target = tmp_path / "download.png"
            info.value.save_as(target)
        finally:
            browser.close()
    result = load_image(Path(target))
    assert result.shape[-2:] == (128, 128) or max(result.shape[-2:]) == 128


def test_rate_a_result_and_answer_an_ab_question_with_keyboard_shortcuts(server, db_path, tmp_path):
    sync_api = _playwright()
    from impasto import bundled
    from impasto.feedback.store import FeedbackStore
    from impasto.io import load_image, resize_long, save_image

    photo = save_image(resize_long(load_image(bundled.photo("chelsea")), 96), tmp_path / "cat.png")
    with sync_api.sync_playwright() as p:
        browser = _launch(p)
        try:
            page = browser.new_page()
            page.goto(f"{server}/?profile=keys")
            page.wait_for_selector("#styles img[data-name='picabia_udnie']")
            page.set_input_files("#content", str(photo))
            page.click("#styles img[data-name='picabia_udnie']")
            page.select_option("#method", "adain")
            page.fill("#size", "64")
            page.click("#go")
            page.wait_for_selector("#rating:not(.hidden)", timeout=120_000)
            page.keyboard.press("3")
            page.wait_for_function("document.querySelector('#rating-note').textContent.includes('saved: 3')")
            assert page.locator("#star-buttons button.on").count() == 3

            page.click("#tab-ab")
            page.click("#go")
            page.wait_for_selector("#ab-buttons:not(.hidden)", timeout=120_000)
            assert page.inner_text("#ab-left-settings") == ""  # blind until answered
            page.keyboard.press("ArrowLeft")
            page.wait_for_function("document.querySelector('#ab-left-settings').textContent.includes('strength')")
            shown = [page.inner_text(f"#ab-{side}-settings") for side in ("left", "right")]
        finally:
            browser.close()
    with FeedbackStore(db_path) as store:
        runs = store.history("keys")
        assert [r["stars"] for r in runs if r["stars"] is not None] == [3] and len(runs) == 3
        choices = store.query("SELECT run_a, run_b, winner FROM choices")
        assert len(choices) == 1 and choices[0]["winner"] == "a"
        left = store.run(choices[0]["run_a"])["settings"]["strength"]
        right = store.run(choices[0]["run_b"])["settings"]["strength"]
    revealed = [float(text.split(",")[0].removeprefix("strength ")) for text in shown]
    assert left != right and revealed == [left, right] and all("max_size 64" in text for text in shown)


def test_rate_from_the_history_page_and_answer_a_blind_survey_with_the_keyboard(server, db_path, tmp_path):
    sync_api = _playwright()
    from impasto import bundled
    from impasto.feedback.store import FeedbackStore, RunRecord
    from impasto.feedback.survey import SurveySpec, create_survey
    from impasto.io import load_image, resize_long, save_image

    photo = save_image(resize_long(load_image(bundled.photo("chelsea")), 64), tmp_path / "cat.png")
    with FeedbackStore(db_path) as store:
        old = store.add_run("gallery", RunRecord("gatys", {"strength": 0.5}, seconds=12.0))
        create_survey(store, SurveySpec("pick", [photo], [bundled.style("picabia_udnie")], ["fast", "adain"],
                                        size=32, seed=1, profile="gallery"))
    with sync_api.sync_playwright() as p:
        browser = _launch(p)
        try:
            page = browser.new_page()
            page.goto(f"{server}/history?profile=gallery")
            card = page.locator(f".run[data-run='{old}']")
            card.wait_for()
            assert "strength 0.5" in card.inner_text() and "image no longer kept" in card.inner_text()
            card.locator(".stars button[data-stars='4']").click()
            card.locator("text=saved").wait_for()

            page.goto(f"{server}/survey/pick?profile=rater")
            page.wait_for_selector("#pair:not([hidden])")
            assert "fast" not in page.content() and "adain" not in page.inner_text("body")  # blind
            page.keyboard.press("ArrowRight")
            page.wait_for_function("document.querySelector('#status').textContent.includes('All questions answered')")
        finally:
            browser.close()
    with FeedbackStore(db_path) as store:
        assert store.run(old)["stars"] == 4
        answers = store.query("SELECT c.winner, p.name AS who FROM choices c JOIN profiles p ON p.id = c.profile_id "
                              "WHERE c.survey_id IS NOT NULL")
    assert answers == [{"winner": "b", "who": "rater"}]
