"""Stylization jobs for the web UI: a bounded worker pool, a visible queue, progress, cancel, expiry.

The engine's callback (the same one that feeds the CLI progress bar) updates the job; returning True
from it stops a Gatys run, which is how cancel works mid-optimization. Results live in memory as PNG
bytes and expire after ``ttl`` seconds: no path from a client ever reaches the file system.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import torch

from impasto.errors import ImpastoError
from impasto.stylizer import Cancelled

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)


@dataclass
class Job:
    method: str
    content: torch.Tensor
    styles: list[torch.Tensor]
    options: Any  # the method's options (impasto.stylizer)
    id: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    state: str = QUEUED
    created: float = field(default_factory=time.time)
    finished: float | None = None
    step: int = 0
    total: int = 0
    stage: str = ""
    losses: dict[str, float] = field(default_factory=dict)
    preview: bytes | None = None
    result: bytes | None = None
    info: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    version: int = 0  # bumped on every change, so event streams know when to send
    cancel: threading.Event = field(default_factory=threading.Event)

    def public(self, position: int | None) -> dict[str, Any]:
        return {"id": self.id, "state": self.state, "method": self.method, "position": position,
                "step": self.step, "total": self.total, "stage": self.stage, "losses": self.losses,
                "has_preview": self.preview is not None, "error": self.error, "version": self.version,
                "seconds": self.info.get("seconds")}


Runner = Callable[[Job, Callable[[Any], bool]], tuple[torch.Tensor, dict[str, Any]]]


class JobManager:
    """``workers`` jobs at a time; at most ``max_queued`` waiting; finished jobs kept ``ttl`` seconds."""

    def __init__(self, runner: Runner, *, workers: int = 1, max_queued: int = 16, ttl: float = 3600.0) -> None:
        self.runner, self.ttl, self.max_queued = runner, ttl, max_queued
        self.jobs: dict[str, Job] = {}
        self.queue: list[str] = []
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="impasto-job")

    def submit(self, job: Job) -> Job:
        self.expire()
        with self.lock:
            if len(self.queue) >= self.max_queued:
                raise QueueFull(f"the queue is full ({self.max_queued} jobs waiting); try again later")
            self.jobs[job.id] = job
            self.queue.append(job.id)
        self.pool.submit(self._run, job)
        return job

    def get(self, job_id: str) -> Job | None:
        self.expire()
        return self.jobs.get(job_id)

    def position(self, job: Job) -> int | None:
        """0 = next to start; None once it has started."""
        with self.lock:
            return self.queue.index(job.id) if job.id in self.queue else None

    def cancel(self, job: Job) -> None:
        job.cancel.set()
        with self.lock:
            if job.id in self.queue:  # not started: it ends now
                self.queue.remove(job.id)
                self._finish(job, CANCELLED)

    def expire(self) -> None:
        now = time.time()
        with self.lock:
            for jid in [j.id for j in self.jobs.values() if j.finished and now - j.finished > self.ttl]:
                del self.jobs[jid]

    def shutdown(self) -> None:
        for job in list(self.jobs.values()):
            job.cancel.set()
        self.pool.shutdown(wait=True, cancel_futures=True)

    def _finish(self, job: Job, state: str, error: str | None = None) -> None:
        job.state, job.error, job.finished = state, error, time.time()
        job.version += 1

    def _run(self, job: Job) -> None:
        with self.lock:
            if job.id not in self.queue:  # cancelled while waiting
                return
            self.queue.remove(job.id)
            job.state = RUNNING
            job.version += 1
        try:
            image, info = self.runner(job, lambda p: self._progress(job, p))
        except Cancelled:
            self._finish(job, CANCELLED)
            return
        except ImpastoError as exc:
            self._finish(job, FAILED, str(exc))
            return
        except Exception as exc:  # a server must report, not die; the message is shown to the user
            self._finish(job, FAILED, f"internal error: {type(exc).__name__}: {exc}")
            return
        if job.cancel.is_set():
            self._finish(job, CANCELLED)
            return
        from impasto.io import encode_png

        job.result, job.info = encode_png(image), info
        job.step = job.total or job.step
        self._finish(job, DONE)

    def _progress(self, job: Job, p: Any) -> bool:
        job.step, job.total, job.stage = p.step, p.total, p.stage
        job.losses = {k: float(v) for k, v in p.losses.items()}
        if getattr(p, "preview", None) is not None:
            job.preview = jpeg(p.preview)
        job.version += 1
        return job.cancel.is_set()


class QueueFull(ImpastoError):
    pass


def jpeg(image: torch.Tensor, long_side: int = 512) -> bytes:
    import io

    from impasto.io import resize_long, tensor_to_pil

    small = resize_long(image, long_side) if max(image.shape[-2:]) > long_side else image
    buf = io.BytesIO()
    tensor_to_pil(small).save(buf, format="JPEG", quality=85)
    return buf.getvalue()
