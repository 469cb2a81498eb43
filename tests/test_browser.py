"""End to end in a real headless Chromium (Debian's, driven by Playwright): upload a photo, pick a
bundled painting, stylize, wait for the result and download the PNG."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    uvicorn = pytest.importorskip("uvicorn")
    from impasto.web.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(results_dir=tmp_path_factory.mktemp("results"))
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


def test_upload_stylize_and_download_in_chromium(server, tmp_path):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium); browser test not run")
    sync_api = pytest.importorskip("playwright.sync_api")
    from impasto import bundled
    from impasto.io import load_image, resize_long, save_image

    photo = save_image(resize_long(load_image(bundled.photo("chelsea")), 160), tmp_path / "cat.png")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
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
