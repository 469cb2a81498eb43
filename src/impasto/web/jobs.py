"""Stylization jobs for the web UI: a bounded worker pool, a visible queue, progress, cancel, expiry.

The engine's callback (the same one that feeds the CLI progress bar) updates the job; returning True
from it stops a Gatys run, which is how cancel works mid-optimization. A finished job lets go of its
decoded images at once and its result goes to disk (:mod:`impasto.web.results`), so memory stays flat
however many jobs run; at most ``max_finished`` finished jobs are kept, each for ``ttl`` seconds, and
they survive a restart. No path from a client ever reaches the file system (ids are checked).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from impasto.errors import ImpastoError
from impasto.stylizer import Cancelled
from impasto.web.results import INTERRUPTED, ResultStore

log = logging.getLogger("impasto.web")
QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)


@dataclass(eq=False)
class Job:
    method: str
    content: torch.Tensor | None  # None once finished: the decoded upload is not kept
    styles: list[torch.Tensor]
    options: Any  # the method's options (impasto.stylizer); None for a job read back from disk
    id: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    state: str = QUEUED
    created: float = field(default_factory=time.time)
    finished: float | None = None
    step: int = 0
    total: int = 0
    stage: str = ""
    losses: dict[str, float] = field(default_factory=dict)
    preview: bytes | None = None
    result: Path | None = None  # the PNG on disk once done
    info: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    version: int = 0  # bumped on every change, so event streams know when to send
    cancel: threading.Event = field(default_factory=threading.Event)
    profile: str = "default"  # the feedback profile the finished run is recorded under
    feature: float | None = None  # the photo-painting pair feature, when already measured (A/B jobs)
    run_id: int | None = None  # the feedback store's run, once recorded
    blind: bool = False  # an A/B job: its run (and so its settings) is not shown until the pair is answered

    def public(self, position: int | None) -> dict[str, Any]:
        return {"id": self.id, "state": self.state, "method": self.method, "position": position,
                "step": self.step, "total": self.total, "stage": self.stage, "losses": self.losses,
                "has_preview": self.preview is not None, "error": self.error, "version": self.version,
                "seconds": self.info.get("seconds"), "run_id": None if self.blind else self.run_id}

    def to_record(self) -> dict[str, Any]:
        """What survives a restart: the public state, timestamps and the settings record."""
        return {**self.public(None), "run_id": self.run_id, "created": self.created, "finished": self.finished,
                "info": self.info}

    @classmethod
    def from_record(cls, record: dict[str, Any], result: Path | None) -> Job:
        job = cls(str(record.get("method")), None, [], None, id=str(record["id"]), state=str(record.get("state")),
                  created=float(record.get("created") or 0), finished=record.get("finished"),
                  step=int(record.get("step") or 0), total=int(record.get("total") or 0),
                  stage=str(record.get("stage") or ""), error=record.get("error"), info=record.get("info") or {})
        run_id = record.get("run_id")
        job.result, job.run_id = result, run_id if isinstance(run_id, int) and not isinstance(run_id, bool) else None
        return job


Runner = Callable[[Job, Callable[[Any], bool]], tuple[torch.Tensor, dict[str, Any]]]
#: called with a job and its image once the result is on disk, before the job is marked done (while its
#: uploads are still held): the feedback store records the run here
OnDone = Callable[[Job, torch.Tensor], None]


@dataclass
class Submission:
    """A checked upload not yet queued: /api/jobs makes one job of it, /api/ab two that differ in
    strength. ``build`` makes the method's options from the form's fields with some replaced (and
    refuses bad ones the way the form is refused), so both routes share one validation path."""

    method: str
    content: torch.Tensor
    styles: list[torch.Tensor]
    options: Any
    profile: str
    build: Callable[[dict[str, Any]], Any]

    def job(self, feature: float | None = None, **overrides: Any) -> Job:
        options = self.build(overrides) if overrides else self.options
        return Job(self.method, self.content, self.styles, options, profile=self.profile, feature=feature)


@dataclass
class Capacity:
    """How much the manager holds: running at once, waiting, finished (count and seconds kept)."""

    workers: int = 1
    max_queued: int = 16
    max_finished: int = 200
    ttl: float = 24 * 3600.0


class JobManager:
    """``workers`` jobs at a time; at most ``max_queued`` waiting; at most ``max_finished`` finished jobs,
    each kept ``ttl`` seconds, their results in ``store`` (read back at start)."""

    def __init__(self, runner: Runner, store: ResultStore, capacity: Capacity | None = None,
                 on_done: OnDone | None = None) -> None:
        self.runner, self.store, self.capacity, self.on_done = runner, store, capacity or Capacity(), on_done
        self.jobs: dict[str, Job] = {}
        self.queue: list[str] = []
        self.lock = threading.RLock()  # cancel finishes a job while holding it; finishing expires
        self.stopping = False
        from impasto.device import threads_initializer

        self.pool = ThreadPoolExecutor(max_workers=self.capacity.workers, thread_name_prefix="impasto-job",
                                       initializer=threads_initializer())
        self._restore()

    def _restore(self) -> None:
        """Finished jobs come back; queued or running ones were interrupted and are marked failed."""
        for record in self.store.load():
            if record.get("state") not in FINISHED:
                record.update(state=FAILED, error=INTERRUPTED, finished=time.time())
                self.store.save_record(str(record["id"]), record)
            path = self.store.result_path(str(record["id"]))
            try:
                job = Job.from_record(record, path if record["state"] == DONE and path.is_file() else None)
            except (TypeError, ValueError):  # a record edited by hand ("step": "x"): skipped, as unreadable ones
                log.warning("impasto web: skipped the damaged job record %s", record["id"])
                continue
            if job.state == DONE and job.result is None:  # its image was removed by hand
                job.state, job.error = FAILED, "the result file is gone"
            self.jobs[job.id] = job
        self.expire()

    def submit(self, job: Job) -> Job:
        self.expire()
        with self.lock:
            if len(self.queue) >= self.capacity.max_queued:
                raise QueueFull(f"the queue is full ({self.capacity.max_queued} jobs waiting); try again later")
            self.jobs[job.id] = job
            self.queue.append(job.id)
        try:
            self.store.save_record(job.id, job.to_record())  # a crash from here on reports it as interrupted
        except OSError as exc:
            with self.lock:
                self.queue.remove(job.id)
                del self.jobs[job.id]
            raise QueueFull(f"cannot take jobs: their results could not be saved ({exc.strerror or exc})") from exc
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
                self._leave_queue(job)
                self._finish(job, CANCELLED)

    def _leave_queue(self, job: Job) -> None:
        """Take ``job`` off the queue (the lock held); every job behind it moved up, which its progress
        stream reports (a stream sends when a job's version changes)."""
        self.queue.remove(job.id)
        for waiting in self.queue:
            self.jobs[waiting].version += 1

    def expire(self) -> None:
        """Drop finished jobs past ``ttl``, then the oldest beyond ``max_finished`` (memory and disk)."""
        now = time.time()
        with self.lock:
            done = sorted((j for j in self.jobs.values() if j.finished), key=lambda j: j.finished or 0.0)
            old = {j.id for j in done if now - (j.finished or now) > self.capacity.ttl}
            gone = [j for j in done if j.id in old]
            for with_result in (True, False):  # a cancel or a failure never pushes out a finished result
                kept = [j for j in done if j.id not in old and (j.result is not None) == with_result]
                gone += kept[:max(0, len(kept) - self.capacity.max_finished)]
            for job in gone:
                del self.jobs[job.id]
        for job in gone:
            self.store.delete(job.id)

    def shutdown(self) -> None:
        self.stopping = True  # a job stopped now was interrupted, not cancelled by its user
        for job in list(self.jobs.values()):
            job.cancel.set()
        self.pool.shutdown(wait=True, cancel_futures=True)

    def _finish(self, job: Job, state: str, error: str | None = None) -> None:
        job.content, job.styles = None, []  # the decoded uploads are the bulk of a job's memory
        job.state, job.error, job.finished = state, error, time.time()
        try:
            self.store.save_record(job.id, job.to_record())
        except OSError as exc:  # the job still ends; the user sees why it will not survive a restart
            job.error = (error + "; " if error else "") + f"not saved to disk ({exc.strerror or exc})"
        job.version += 1
        self.expire()

    def _run(self, job: Job) -> None:
        with self.lock:
            if job.id not in self.queue:  # cancelled while waiting
                return
            self._leave_queue(job)
            job.state = RUNNING
            job.version += 1
        try:
            image, info = self.runner(job, lambda p: self._progress(job, p))
        except Cancelled:
            self._stopped(job)
            return
        except ImpastoError as exc:
            self._finish(job, FAILED, str(exc))
            return
        except Exception as exc:  # a server must report, not die; the message is shown to the user
            self._finish(job, FAILED, f"internal error: {type(exc).__name__}: {exc}")
            return
        if job.cancel.is_set():
            self._stopped(job)
            return
        from impasto.io import encode_png

        job.info, job.step = info, job.total or job.step
        try:
            job.result = self.store.save_result(job.id, encode_png(image))
        except OSError as exc:
            self._finish(job, FAILED, f"could not save the result: {exc.strerror or exc}")
            return
        self._after(job, image)
        self._finish(job, DONE)

    def _stopped(self, job: Job) -> None:
        """A running job that stopped: cancelled by its user, or interrupted by the server's shutdown (which
        a restart reports as it does for a queued job: failed, submit it again)."""
        self._finish(job, *((FAILED, INTERRUPTED) if self.stopping else (CANCELLED,)))

    def _after(self, job: Job, image: torch.Tensor) -> None:
        """The ``on_done`` hook; whatever goes wrong in it (a locked or damaged feedback database), the
        result is on disk and the job is done: one log line says what was not recorded."""
        if self.on_done is None:
            return
        try:
            self.on_done(job, image)
        except Exception as exc:
            log.warning("impasto web: job %s finished but was not recorded in the feedback store: %s", job.id,
                        str(exc).splitlines()[0] if str(exc) else type(exc).__name__)

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
