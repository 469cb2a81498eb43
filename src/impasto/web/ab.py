"""The web UI's A/B mode ("which do you prefer?"): one photo and painting rendered at two strengths, shown
side by side without their settings, the answer recorded as a choice in the feedback store.

Why these two strengths: :func:`impasto.feedback.taste.next_ab_strengths` picks the pair whose answer
teaches the profile's strength model the most. Why hidden and shuffled: an answer given knowing which is
stronger measures the label, not the image; sides are drawn server-side (``secrets``), and the settings
are revealed only after the answer. A pair holds ids and numbers only (never the decoded images), and at
most ``cap`` pairs are kept in memory, the oldest dropped first, like the job manager's finished jobs.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from impasto.feedback.store import FeedbackStore
from impasto.web import params
from impasto.web.jobs import DONE, FINISHED, Job, JobManager, QueueFull, Submission

AB_METHODS = ("gatys", "fast", "adain")
SIDES = ("left", "right")
ANSWERS = ("left", "right", "same", "skip")
_WINNER = {"left": "a", "right": "b", "same": "same", "skip": "skip"}  # the store's run a is the left one


@dataclass
class ABPair:
    """Two jobs (left, right) of one photo and painting at two strengths, and the answer once given."""

    profile: str
    method: str
    feature: float
    jobs: tuple[str, str]
    strengths: tuple[float, float]
    id: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    created: float = field(default_factory=time.time)
    winner: str | None = None
    choice_id: int | None = None


class ABBook:
    """The A/B pairs in memory, at most ``cap`` (the oldest go first)."""

    def __init__(self, cap: int = 200) -> None:
        self.cap = cap
        self.pairs: OrderedDict[str, ABPair] = OrderedDict()
        self.lock = threading.Lock()
        self.answering = threading.Lock()  # two answers at once: the second finds the first

    def add(self, pair: ABPair) -> None:
        with self.lock:
            self.pairs[pair.id] = pair
            while len(self.pairs) > self.cap:
                self.pairs.popitem(last=False)

    def get(self, pair_id: str) -> ABPair | None:
        with self.lock:
            return self.pairs.get(pair_id)


def public(pair: ABPair, manager: JobManager) -> dict[str, Any]:
    """The pair as the page sees it: each side's job and state; settings (and run ids, which lead to
    them) only once answered."""
    out: dict[str, Any] = {"id": pair.id, "method": pair.method, "profile": pair.profile, "answer": pair.winner}
    for side, job_id, strength in zip(SIDES, pair.jobs, pair.strengths, strict=True):
        job = manager.get(job_id)
        entry: dict[str, Any] = {"job": job_id, "state": job.state if job is not None else "expired",
                                 "error": job.error if job is not None else None}
        if pair.winner is not None:
            entry["settings"] = {"strength": strength, **((job.info.get("options") or {}) if job else {})}
            entry["run_id"] = job.run_id if job is not None else None
        out[side] = entry
    out["ready"] = all(out[s]["state"] == DONE for s in SIDES)
    return out


def choose_sides(strengths: tuple[float, float]) -> tuple[float, float]:
    """The two strengths in random order (which is left is the server's secret until the answer)."""
    a, b = strengths
    return (a, b) if secrets.randbelow(2) == 0 else (b, a)


def _queue_both(manager: JobManager, jobs: list[Job]) -> None:
    """Both jobs or neither (a full queue after the first cancels it)."""
    first = manager.submit(jobs[0])
    try:
        manager.submit(jobs[1])
    except QueueFull:
        manager.cancel(first)
        raise


@dataclass
class ABContext:
    """What the A/B routes share with the rest of the app."""

    manager: JobManager
    store: FeedbackStore
    book: ABBook
    read: Callable[[Request, tuple[str, ...]], Awaitable[Submission]]  # the /api/jobs upload path
    measure: Callable[[Job], float | None]  # the pair feature
    recording: bool = True


async def start_pair(ctx: ABContext, request: Request) -> ABPair:
    """Validate the upload like /api/jobs, ask the profile's most informative question, queue both."""
    if not ctx.recording:
        raise HTTPException(409, "recording is off (IMPASTO_NO_RECORD), so an A/B answer could not be kept")
    sub = await ctx.read(request, AB_METHODS)
    if "strength" in await request.form():  # parsed once already: starlette keeps it
        raise HTTPException(422, "an A/B pair picks its two strengths itself; leave strength out")
    feature = await run_in_threadpool(ctx.measure, sub.job())
    from impasto.feedback.taste import next_ab_strengths

    asked = await run_in_threadpool(next_ab_strengths, ctx.store, sub.profile, sub.method, feature or 0.0)
    left, right = choose_sides(asked)
    jobs = [sub.job(feature, strength=str(s)) for s in (left, right)]
    for job in jobs:
        job.blind = True
    try:
        _queue_both(ctx.manager, jobs)
    except QueueFull as exc:
        raise HTTPException(503, str(exc)) from exc
    pair = ABPair(sub.profile, sub.method, float(feature or 0.0), (jobs[0].id, jobs[1].id), (left, right))
    ctx.book.add(pair)
    return pair


def answer_pair(ctx: ABContext, pair: ABPair, answer: str) -> None:
    """Record the answer as a choice between the two recorded runs (left is run a)."""
    with ctx.book.answering:
        _answer(ctx, pair, answer)


def _answer(ctx: ABContext, pair: ABPair, answer: str) -> None:
    if pair.winner is not None:
        raise HTTPException(409, f"this pair was answered already ({pair.winner})")
    jobs = [ctx.manager.get(j) for j in pair.jobs]
    if any(j is None or j.state not in FINISHED for j in jobs):
        raise HTTPException(409, "both images must be finished before they can be compared")
    runs = [j.run_id for j in jobs if j is not None and j.state == DONE]
    if len(runs) != 2 or None in runs:
        raise HTTPException(409, "one of the images failed or was not recorded; start another pair")
    pair.choice_id = ctx.store.choose(pair.profile, int(runs[0]), int(runs[1]), _WINNER[answer])  # type: ignore[arg-type]
    pair.winner = answer
    for job in jobs:
        job.blind = False  # type: ignore[union-attr]


def add_ab_routes(app: FastAPI, ctx: ABContext) -> None:
    """POST /api/ab, GET /api/ab/{id}, POST /api/ab/{id}/answer."""

    def pair_or_404(pair_id: str) -> ABPair:
        pair = ctx.book.get(pair_id)
        if pair is None:
            raise HTTPException(404, "no such A/B pair (pairs expire)")
        return pair

    @app.post("/api/ab", status_code=202)
    async def create(request: Request) -> dict[str, Any]:
        return public(await start_pair(ctx, request), ctx.manager)

    @app.get("/api/ab/{pair_id}")
    def status(pair_id: str) -> dict[str, Any]:
        return public(pair_or_404(pair_id), ctx.manager)

    @app.post("/api/ab/{pair_id}/answer")
    async def answer(pair_id: str, request: Request) -> dict[str, Any]:
        pair = pair_or_404(pair_id)
        given = params.one_of((await params.fields(request)).get("answer"), ANSWERS, "answer")
        await run_in_threadpool(answer_pair, ctx, pair, given)
        return public(pair, ctx.manager)
