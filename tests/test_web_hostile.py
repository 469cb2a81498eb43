"""The web server against hostile clients and crashes, through a real server where it matters: held memory
stays bounded, oversized bodies are refused before they are read, cross-site writes and rebound Host
names are refused, a non-loopback server needs its token, and finished results survive a kill -9."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
import httpx
from fastapi.testclient import TestClient

from impasto import bundled
from impasto.io import encode_png, load_image, resize_long
from impasto.web.app import Limits, create_app
from impasto.web.guard import Access, refusal
from impasto.web.guard import _Request as GuardRequest
from impasto.web.jobs import Capacity
from impasto.web.results import INTERRUPTED
from web_helpers import wait_job as _wait

LOCAL = "http://127.0.0.1"


@pytest.fixture(scope="module")
def photo_png() -> bytes:
    return encode_png(resize_long(load_image(bundled.photo("chelsea")), 48))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(client, photo: bytes, **data: str):
    return client.post("/api/jobs", files={"content": ("x.png", photo, "image/png")}, data={"method": "fast", **data})


def test_two_hundred_jobs_leave_only_small_records_in_memory(photo_png, tmp_path):
    # a finished job lets go of its decoded upload and its result lives on disk; the count held is capped
    def runner(job, progress):
        return torch.rand(1, 3, 64, 64), {"seconds": 0.0}

    app = create_app(runner=runner, capacity=Capacity(max_finished=20, max_queued=300), results_dir=tmp_path)
    manager = app.state.manager
    with TestClient(app, base_url=LOCAL) as client:
        ids = [_post(client, photo_png).json()["id"] for _ in range(200)]
        assert _wait(client, ids[-1])["state"] == "done"
        manager.pool.submit(lambda: None).result()  # every queued job has run
        held = list(manager.jobs.values())
        assert len(held) <= 20
        assert all(j.content is None and j.styles == [] for j in held)
        assert all(isinstance(j.result, Path) and j.result.is_file() for j in held)
        assert len(list(tmp_path.glob("*.png"))) <= 20 and len(list(tmp_path.glob("*.json"))) <= 20
        assert client.get(f"/api/jobs/{ids[0]}").status_code == 404  # evicted, from memory and disk
        assert client.get(f"/api/jobs/{ids[-1]}/result.png").status_code == 200


def test_a_declared_oversized_body_is_refused_before_it_is_sent(tmp_path):
    uvicorn = pytest.importorskip("uvicorn")
    port = _free_port()
    app = create_app(limits=Limits(max_upload_bytes=2**20), results_dir=tmp_path)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; "
                      b"boundary=x\r\nContent-Length: 300000000\r\n\r\n")  # headers only: no body follows
            t0 = time.perf_counter()
            reply = s.recv(4096)
            while b"larger than" not in reply and (more := s.recv(4096)):  # the body may come in its own packet
                reply += more
            assert reply.startswith(b"HTTP/1.1 413") and b"larger than" in reply
            assert time.perf_counter() - t0 < 5
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:  # no length declared: counted
            head = b'--x\r\nContent-Disposition: form-data; name="content"; filename="a.png"\r\n\r\n'
            chunks = (head if i == 0 else b"x" * 65536 for i in range(200))  # 13 MB of one file part, chunked
            resp = client.post("/api/jobs", content=chunks,
                               headers={"content-type": "multipart/form-data; boundary=x"})
            assert resp.status_code == 413
    finally:
        server.should_exit = True
        thread.join(10)


def test_decoding_a_large_upload_does_not_stall_other_requests(photo_png, tmp_path, monkeypatch):
    from impasto.web import app as web_app

    real = web_app.decode_upload

    def slow_decode(*args):
        time.sleep(1.5)
        return real(*args)

    monkeypatch.setattr(web_app, "decode_upload", slow_decode)
    app = create_app(results_dir=tmp_path, runner=lambda job, progress: (torch.zeros(1, 3, 8, 8), {}))
    with TestClient(app, base_url=LOCAL) as client:
        submit = threading.Thread(target=lambda: _post(client, photo_png))
        submit.start()
        time.sleep(0.3)
        t0 = time.perf_counter()
        assert client.get("/api/methods").status_code == 200
        assert time.perf_counter() - t0 < 1.0  # answered while the upload decodes
        submit.join()


@pytest.mark.parametrize("headers", [{"origin": "https://evil.example"}, {"origin": "null"},
                                     {"sec-fetch-site": "cross-site"}])
def test_cross_site_writes_are_refused(photo_png, tmp_path, headers):
    app = create_app(results_dir=tmp_path, runner=lambda job, progress: (torch.zeros(1, 3, 8, 8), {}))
    with TestClient(app, base_url=LOCAL) as client:
        resp = client.post("/api/jobs", files={"content": ("x.png", photo_png, "image/png")},
                           data={"method": "fast"}, headers=headers)
        assert resp.status_code == 403 and "cross" in resp.json()["detail"]
        assert client.get("/api/methods", headers=headers).status_code == 200  # reads stay open
        same = client.post("/api/jobs", files={"content": ("x.png", photo_png, "image/png")},
                           data={"method": "fast"}, headers={"origin": LOCAL, "sec-fetch-site": "same-origin"})
        assert same.status_code == 202


def test_a_foreign_host_name_is_refused_against_dns_rebinding(tmp_path):
    with TestClient(create_app(results_dir=tmp_path), base_url="http://attacker.example:8000") as client:
        resp = client.get("/api/methods")
        assert resp.status_code == 403 and "Host" in resp.json()["detail"]
    for host in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000", "192.168.1.20:8000"):
        assert refusal(Access(), GuardRequest("GET", {"host": host})) is None, host
    assert refusal(Access(frozenset({"studio.lan"})), GuardRequest("GET", {"host": "studio.lan:80"})) is None


def test_a_non_loopback_server_needs_its_token(tmp_path):
    access = Access.for_bind("0.0.0.0")
    assert access.token and Access.for_bind("127.0.0.1").token is None
    with TestClient(create_app(results_dir=tmp_path, access=access), base_url="http://192.168.1.20:8000") as client:
        assert client.get("/api/methods").status_code == 403
        assert client.get("/api/methods", params={"token": "wrong"}).status_code == 403
        page = client.get("/", params={"token": access.token})
        assert page.status_code == 200 and "impasto_token" in page.headers["set-cookie"]
        assert "HttpOnly" in page.headers["set-cookie"]
        assert client.get("/api/methods").status_code == 200  # the cookie now carries it
        client.cookies.clear()
        assert client.get("/api/methods", headers={"authorization": f"Bearer {access.token}"}).status_code == 200


def _serve(home: Path, *args: str) -> tuple[subprocess.Popen, str, str]:
    port = _free_port()
    env = {**os.environ, "IMPASTO_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "impasto", "serve", "--port", str(port), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()  # type: ignore[union-attr]
    assert "impasto web UI on http" in line, (line, proc.stderr.read() if proc.poll() is not None else "")  # type: ignore[union-attr]
    url = line.split(" on ", 1)[1].split(" ", 1)[0]
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            httpx.get(url, timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    return proc, url.split("/?")[0], url


def test_finished_results_survive_a_kill_and_interrupted_jobs_say_why(photo_png, tmp_path):
    proc, base, _ = _serve(tmp_path)
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            done = _post(client, photo_png).json()["id"]
            assert _wait(client, done)["state"] == "done"
            png = client.get(f"/api/jobs/{done}/result.png").content
            style = encode_png(resize_long(load_image(bundled.style("picabia_udnie")), 48))
            long = client.post("/api/jobs", files={"content": ("x.png", photo_png, "image/png"),
                                                   "style": ("s.png", style, "image/png")},
                               data={"method": "gatys", "size": "48", "iterations": "1000"}).json()["id"]
            queued = _post(client, photo_png).json()["id"]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    proc, base, _ = _serve(tmp_path)
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            assert client.get(f"/api/jobs/{done}").json()["state"] == "done"
            assert client.get(f"/api/jobs/{done}/result.png").content == png
            for jid in (long, queued):
                status = client.get(f"/api/jobs/{jid}").json()
                assert status["state"] == "failed" and status["error"] == INTERRUPTED
    finally:
        proc.terminate()
        proc.wait(10)


def test_serve_on_all_interfaces_warns_and_prints_a_token(tmp_path):
    proc, base, url = _serve(tmp_path, "--host", "0.0.0.0")
    try:
        assert "?token=" in url
        assert httpx.get(f"{base}/api/methods").status_code == 403
        assert httpx.get(url).status_code == 200
    finally:
        proc.terminate()
        proc.wait(10)
        assert "other machines can reach" in proc.stderr.read()  # type: ignore[union-attr]


def test_uploads_are_spooled_nowhere_beyond_the_limit(tmp_path):
    # one byte over the upload limit per file: 413 with the limit in MB, and the job list stays empty
    app = create_app(limits=Limits(max_upload_bytes=2**20), results_dir=tmp_path)
    with TestClient(app, base_url=LOCAL) as client:
        resp = client.post("/api/jobs", files={"content": ("x.png", io.BytesIO(b"\0" * (2**20 + 1)), "image/png")},
                           data={"method": "fast"})
        assert resp.status_code == 413 and "1 MB" in resp.json()["detail"]
        assert app.state.manager.jobs == {}


@pytest.mark.parametrize(("size", "method", "status"), [((1, 1), "fast", 202), ((4, 4), "adain", 202),
                                                        ((2000, 3), "gatys", 422), ((1, 1), "gatys", 202)])
def test_tiny_and_thin_uploads_run_or_are_refused_at_submit_never_an_internal_error(tmp_path, size, method, status):
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(buf, format="PNG")
    app = create_app(results_dir=tmp_path, limits=Limits(max_size=64))
    with TestClient(app, base_url=LOCAL) as client:
        resp = client.post("/api/jobs", files={"content": ("x.png", buf.getvalue(), "image/png")},
                           data={"method": method, "size": "32", **({} if method == "fast" else {"style_name":
                                 "picabia_udnie"}), **({"iterations": "2"} if method == "gatys" else {})})
        assert resp.status_code == status, resp.text
        if status == 422:
            assert "VGG" in resp.json()["detail"] or "thin" in resp.json()["detail"]
        else:
            done = _wait(client, resp.json()["id"], timeout=120)
            assert done["state"] == "done", done


def test_a_body_that_never_arrives_is_408_and_a_client_that_leaves_is_400_without_a_traceback(monkeypatch):
    import asyncio

    from fastapi import HTTPException
    from starlette.requests import ClientDisconnect

    from impasto.web import params

    monkeypatch.setattr(params, "BODY_SECONDS", 0.05)

    async def never() -> bytes:
        await asyncio.sleep(10)
        return b""

    async def gone() -> bytes:
        raise ClientDisconnect()

    for reading, status in ((never, 408), (gone, 400)):
        with pytest.raises(HTTPException) as refused:
            asyncio.run(params.body_of(reading()))
        assert refused.value.status_code == status

