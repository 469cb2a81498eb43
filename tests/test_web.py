"""The web API (httpx through FastAPI's TestClient): jobs for every method, live events, queue positions,
cancel, expiry, and the limits (413 size/pixels, 415 content not an image, 422 bad parameters)."""

from __future__ import annotations

import io
import json
import threading
import time

import pytest
import torch

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient

from impasto import bundled
from impasto.io import encode_png, load_image, load_image_bytes
from impasto.web.app import Limits, create_app
from impasto.web.jobs import Capacity
from web_helpers import wait_job as _wait

LOCAL = "http://127.0.0.1"  # the Host a browser on this machine sends; TestClient's "testserver" is refused


@pytest.fixture(scope="module")
def photo_png() -> bytes:
    from impasto.io import resize_long

    return encode_png(resize_long(load_image(bundled.photo("chelsea")), 96))


@pytest.fixture()
def client(tmp_path):
    app = create_app(limits=Limits(max_upload_bytes=2 * 2**20, max_pixels=4_000_000, max_size=256),
                     results_dir=tmp_path / "results")
    with TestClient(app, base_url=LOCAL) as c:
        yield c


def test_page_and_options(client):
    page = client.get("/")
    assert page.status_code == 200 and "<form" in page.text and "EventSource" in page.text
    opts = client.get("/api/options").json()
    assert "picabia_udnie" in opts["styles"] and opts["methods"] == ["gatys", "fast", "adain"]
    assert len(opts["fast_styles"]) == 4 and opts["limits"]["max_size"] == 256
    assert client.get("/api/styles/picabia_udnie.jpg").headers["content-type"] == "image/jpeg"
    assert client.get("/api/styles/..%2F..%2Fetc%2Fpasswd.jpg").status_code == 404


def test_the_form_is_described_by_the_same_declarations_as_the_cli(client):
    from impasto import options

    desc = client.get("/api/methods").json()
    assert desc["default"] == options.WEB_DEFAULT_METHOD
    assert desc["methods"] == json.loads(json.dumps(options.describe(web_only=True)))
    for method, entry in desc["methods"].items():
        strength = next(o for o in entry["options"] if o["name"] == "strength")
        assert strength["default"] == options.make_options(method).strength


def test_a_painting_given_to_fast_is_422_as_in_the_cli(client, photo_png):
    resp = client.post("/api/jobs", files={"content": ("cat.png", photo_png, "image/png")},
                       data={"method": "fast", "style_name": "picabia_udnie"})
    assert resp.status_code == 422 and "takes no painting" in resp.json()["detail"]


@pytest.mark.parametrize("method,extra", [("adain", {"style_name": "picabia_udnie", "strength": "0.8"}),
                                          ("fast", {"style_index": "2"})])
def test_feed_forward_jobs_return_a_png(client, photo_png, method, extra):
    resp = client.post("/api/jobs", files={"content": ("cat.png", photo_png, "image/png")},
                       data={"method": method, "size": "64", **extra})
    assert resp.status_code == 202, resp.text
    status = _wait(client, resp.json()["id"])
    assert status["state"] == "done", status
    png = client.get(f"/api/jobs/{status['id']}/result.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert max(load_image_bytes(png.content).shape[-2:]) == 64


def test_gatys_job_streams_progress_and_previews_over_sse(client, photo_png):
    style = encode_png(load_image(bundled.style("picabia_udnie")).narrow(-1, 0, 200).narrow(-2, 0, 200))
    resp = client.post("/api/jobs", files={"content": ("c.png", photo_png, "image/png"),
                                           "style": ("any-name.bin", style, "application/octet-stream")},
                       data={"method": "gatys", "size": "64", "iterations": "20"})
    assert resp.status_code == 202, resp.text
    job_id = resp.json()["id"]
    events = []
    with client.stream("GET", f"/api/jobs/{job_id}/events") as stream:
        name = None
        for line in stream.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                events.append((name, json.loads(line[5:])))
                if name in ("done", "failed", "cancelled"):
                    break
    assert events[-1][0] == "done", events[-1]
    running = [e for n, e in events if n == "running"]
    assert running and any(e["step"] > 0 and e["losses"] for e in running)
    assert client.get(f"/api/jobs/{job_id}/preview.jpg").headers["content-type"] == "image/jpeg"


def test_limits_give_clear_http_errors(client, photo_png):
    def post(content: bytes, **data: str):
        return client.post("/api/jobs", files={"content": ("x.png", content, "image/png")},
                           data={"method": "adain", "style_name": "picabia_udnie", "size": "64", **data})

    big = post(b"\0" * (2 * 2**20 + 10))
    assert big.status_code == 413 and "MB" in big.json()["detail"]
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (3000, 3000)).save(buf, format="PNG")  # tiny file, 9 megapixels
    bomb = post(buf.getvalue())
    assert bomb.status_code == 413 and "megapixels" in bomb.json()["detail"]
    text = post(b"hello, I am a text file named x.png")
    assert text.status_code == 415 and "not an image" in text.json()["detail"]
    truncated = post(photo_png[: len(photo_png) // 2])
    assert truncated.status_code == 415
    for bad in ({"method": "magic"}, {"size": "5000"}, {"strength": "2"}, {"style_name": "nope"},
                {"preserve_color": "sepia"}, {"strength": "inf"}, {"strength": "1e308"}, {"style_weight": "3"},
                {"size": "nan"}):
        assert post(photo_png, **bad).status_code == 422, bad
    no_style = client.post("/api/jobs", files={"content": ("x.png", photo_png, "image/png")},
                           data={"method": "gatys", "size": "64"})
    assert no_style.status_code == 422 and "style" in no_style.json()["detail"]
    assert client.get("/api/jobs/nope").status_code == 404


def _blocking_app(results_dir, **kw):
    """An app whose jobs wait for a release event: queue order and cancel without timing races."""
    release = threading.Event()

    def runner(job, progress):
        for i in range(1000):
            if progress(type("P", (), {"step": i, "total": 1000, "stage": "t", "losses": {}, "preview": None})()):
                return torch.zeros(1, 3, 8, 8), {}
            if release.wait(0.01):
                break
        return torch.ones(1, 3, 8, 8), {"seconds": 0.0}

    return create_app(runner=runner, capacity=Capacity(**kw), results_dir=results_dir), release


def test_queue_positions_cancel_and_result_before_done(photo_png, tmp_path):
    app, release = _blocking_app(tmp_path, workers=1)
    with TestClient(app, base_url=LOCAL) as client:
        post = lambda: client.post("/api/jobs", files={"content": ("x.png", photo_png, "image/png")},  # noqa: E731
                                   data={"method": "fast"}).json()
        first, second, third = post(), post(), post()
        time.sleep(0.3)
        assert client.get(f"/api/jobs/{first['id']}").json()["state"] == "running"
        assert client.get(f"/api/jobs/{second['id']}").json()["position"] == 0
        assert client.get(f"/api/jobs/{third['id']}").json()["position"] == 1
        assert client.get(f"/api/jobs/{first['id']}/result.png").status_code == 409
        behind = app.state.manager.jobs[third["id"]]
        version = behind.version
        assert client.delete(f"/api/jobs/{second['id']}").json()["state"] == "cancelled"  # waiting: ends at once
        assert client.get(f"/api/jobs/{third['id']}").json()["position"] == 0
        assert behind.version > version  # its progress stream sends the new position
        client.delete(f"/api/jobs/{first['id']}")  # running: the callback stops it
        assert _wait(client, first["id"])["state"] == "cancelled"
        release.set()
        assert _wait(client, third["id"])["state"] == "done"


def test_cancelled_jobs_never_push_a_finished_result_out(photo_png, tmp_path):
    app, release = _blocking_app(tmp_path, workers=1, max_queued=5, max_finished=2)
    with TestClient(app, base_url=LOCAL) as client:
        post = lambda: client.post("/api/jobs", files={"content": ("x.png", photo_png, "image/png")},  # noqa: E731
                                   data={"method": "fast"}).json()
        release.set()
        done = post()
        assert _wait(client, done["id"])["state"] == "done"
        release.clear()
        busy = post()  # holds the worker while the others are cancelled in the queue
        for _ in range(3):
            client.delete(f"/api/jobs/{post()['id']}")
        assert client.get(f"/api/jobs/{done['id']}/result.png").status_code == 200
        release.set()
        _wait(client, busy["id"])


def test_a_job_running_at_shutdown_comes_back_failed_and_a_damaged_record_is_skipped(photo_png, tmp_path):
    from impasto.web.results import INTERRUPTED

    app, _ = _blocking_app(tmp_path, workers=1)
    with TestClient(app, base_url=LOCAL) as client:
        running = client.post("/api/jobs", files={"content": ("x.png", photo_png, "image/png")},
                              data={"method": "fast"}).json()
        time.sleep(0.2)  # running, waiting for a release that never comes: the shutdown stops it
    (tmp_path / "AAAAAAAAAAAA.json").write_text('{"id": "AAAAAAAAAAAA", "state": "done", "created": "yesterday"}')
    (tmp_path / "BBBBBBBBBBBB.json").write_text('{"id": "BBBBBBBBBBBB", "state": "failed", "step": "x"}')
    again, _ = _blocking_app(tmp_path, workers=1)
    with TestClient(again, base_url=LOCAL) as client:  # starts despite the two records edited by hand
        job = client.get(f"/api/jobs/{running['id']}").json()
        assert job["state"] == "failed" and job["error"] == INTERRUPTED
        assert client.get("/api/jobs/AAAAAAAAAAAA").status_code == 404
        assert client.get("/api/jobs/BBBBBBBBBBBB").status_code == 404


def test_full_queue_is_503_and_finished_jobs_expire(photo_png, tmp_path):
    app, release = _blocking_app(tmp_path, workers=1, max_queued=1, ttl=0.2)
    with TestClient(app, base_url=LOCAL) as client:
        post = lambda: client.post("/api/jobs", files={"content": ("x.png", photo_png, "image/png")},  # noqa: E731
                                   data={"method": "fast"})
        a = post().json()
        time.sleep(0.2)
        b = post()
        assert b.status_code == 202
        c = post()
        assert c.status_code == 503 and "queue is full" in c.json()["detail"]
        release.set()
        _wait(client, b.json()["id"])
        time.sleep(0.3)
        assert client.get(f"/api/jobs/{a['id']}").status_code == 404
