"""Load on the web server over loopback (prints JSON): several clients submit a few hundred small jobs,
some with a large photo, against a real ``impasto serve``; reports jobs submitted, completed, refused
(by status), lost, and the server's memory (resident set) sampled through the run.

    python benchmarks/web_load.py [--clients 12] [--jobs 300] [--big-every 10] [--seconds 600]

Each client submits a job, follows it as the page does and downloads its result before the next; more
clients than the queue holds, so some submissions are refused (503) and retried. "Lost" is a job the
server accepted (202) that did not reach ``done`` or whose result could not be downloaded. "Flat"
memory: the resident set after the last job against the one after the first quarter.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

from impasto import bundled
from impasto.io import encode_png, load_image, resize, resize_long, tensor_to_pil


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start_server(home: str, max_queued: int) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "IMPASTO_HOME": home, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "impasto", "serve", "--port", str(port), "--max-queued",
                             str(max_queued), "--max-megapixels", "24"], stdout=subprocess.PIPE, env=env, text=True)
    proc.stdout.readline()  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            httpx.get(base, timeout=1)
            return proc, base
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("the server did not start")


class Load:
    """The clients' shared tally."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.accepted: list[str] = []
        self.refused: Counter[int] = Counter()
        self.submitted = 0
        self.states: Counter[str] = Counter()
        self.lost = 0

    def submit(self, client: httpx.Client, photo: bytes, deadline: float) -> str | None:
        while time.time() < deadline:
            resp = client.post("/api/jobs", files={"content": ("p", photo, "application/octet-stream")},
                               data={"method": "fast", "size": "128"})
            with self.lock:
                self.submitted += 1
                if resp.status_code == 202:
                    self.accepted.append(resp.json()["id"])
                    return str(resp.json()["id"])
                self.refused[resp.status_code] += 1
            time.sleep(0.2)  # 503: the queue is full; a polite client waits and retries
        return None

    def collect(self, client: httpx.Client, job_id: str) -> None:
        """Wait for the job as the page does, then download its result: anything else is a loss."""
        while (state := client.get(f"/api/jobs/{job_id}").json().get("state")) in ("queued", "running"):
            time.sleep(0.1)
        ok = state == "done" and client.get(f"/api/jobs/{job_id}/result.png").status_code == 200
        with self.lock:
            self.states[str(state)] += 1
            self.lost += 0 if ok else 1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=12, help="each submits, waits, downloads, then submits again")
    ap.add_argument("--jobs", type=int, default=300)
    ap.add_argument("--big-every", type=int, default=10, help="every Nth job uploads a 20-megapixel photo")
    ap.add_argument("--seconds", type=float, default=600, help="stop submitting after this long")
    ap.add_argument("--max-queued", type=int, default=8)
    args = ap.parse_args()
    photo = load_image(bundled.photo("chelsea"))
    small = encode_png(resize_long(photo, 128))
    buf = io.BytesIO()
    tensor_to_pil(resize(photo, (3900, 5200))).save(buf, format="JPEG", quality=90)
    big = buf.getvalue()  # 20 megapixels in a few MB; decoded, 240 MB as float32
    home = tempfile.mkdtemp(prefix="impasto-web-load-")
    proc, base = start_server(home, args.max_queued)
    load, samples = Load(), []
    deadline = time.time() + args.seconds
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.5):
            samples.append((len(load.accepted), rss_mb(proc.pid)))

    def client(k: int) -> None:
        with httpx.Client(base_url=base, timeout=120) as c:
            for i in range(k, args.jobs, args.clients):
                job = load.submit(c, big if args.big_every and i % args.big_every == 0 else small, deadline)
                if job is not None:
                    load.collect(c, job)

    threading.Thread(target=sample, daemon=True).start()
    t0 = time.time()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    proc.terminate()
    proc.wait(30)
    quarter = next((mb for n, mb in samples if n >= len(load.accepted) // 4), samples[0][1] if samples else 0.0)
    print(json.dumps({
        "benchmark": "web_load", "clients": args.clients, "jobs_planned": args.jobs, "big_every": args.big_every,
        "seconds": round(time.time() - t0, 1), "requests": load.submitted, "accepted": len(load.accepted),
        "completed": load.states.get("done", 0), "final_states": dict(load.states),
        "refused": dict(load.refused), "lost": load.lost,
        "rss_mb_peak": round(max(mb for _, mb in samples), 1) if samples else None,
        "rss_mb_after_first_quarter": round(quarter, 1),
        "rss_mb_end": round(samples[-1][1], 1) if samples else None}, indent=1))


if __name__ == "__main__":
    main()
