"""A blind survey's questionnaire in the browser: ``/survey/{name}`` asks one question at a time (which of
two images is better), with no settings and no variant names anywhere in what it is sent.

Why the images go by question id and side: the file path comes from the store (the question's run), never
from the client, and only a file inside the survey's own folder is served, so a damaged or edited
database cannot turn this route into a way to read other files. Anyone on this machine may answer (the
Host/Origin/token rules of :mod:`impasto.web.guard` apply as to every route), each under their profile.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse
from starlette.concurrency import run_in_threadpool

from impasto.errors import InputError
from impasto.feedback import survey
from impasto.feedback.store import WINNERS, FeedbackStore
from impasto.web import params


def question_image(store: FeedbackStore, name: str, question_id: int, side: str) -> Path:
    """The file of one side of one question, or 404: unknown survey, question or side, or a file that is
    missing or lies outside the survey's folder."""
    if side not in ("a", "b"):
        raise HTTPException(404, "a question has sides a and b")
    try:
        question = survey.get_question(store, name, question_id)
        folder = survey.survey_folder(store, name)
    except InputError as exc:
        raise HTTPException(404, "no such survey question") from exc
    raw = question.get(f"image_{side}")
    if folder is None or not raw:
        raise HTTPException(404, "this question has no image")
    path, root = Path(raw).resolve(), folder.resolve()
    if root not in path.parents or path.suffix.lower() != ".png" or not path.is_file():
        raise HTTPException(404, "this question's image is not in the survey's folder")
    return path


def next_payload(store: FeedbackStore, name: str, profile: str) -> dict[str, Any]:
    """The next unanswered question as the page needs it: its id and progress, its two images' addresses;
    nothing that tells which variant is which (no paths, run ids or labels)."""
    try:
        question = survey.next_question(store, name, profile)
    except InputError as exc:
        raise HTTPException(404, "no such survey") from exc
    if question is None:
        return {"survey": name, "profile": profile, "done": True, "question": None}
    qid = question["id"]
    base = f"/api/surveys/{name}/questions/{qid}"
    return {"survey": name, "profile": profile, "done": False,
            "question": {"id": qid, "answered": question["answered"], "total": question["total"],
                         "images": {"a": f"{base}/a.png", "b": f"{base}/b.png"}}}


def _checked_name(name: str) -> str:
    try:
        return survey.check_name(name)
    except InputError as exc:
        raise HTTPException(404, "no such survey") from exc


def add_survey_routes(app: FastAPI, store: FeedbackStore, default_profile: str) -> None:
    """GET /survey/{name}, GET /api/surveys/{name}/next, the images, POST .../answer."""

    @app.get("/survey/{name}", response_class=HTMLResponse)
    def page(name: str) -> str:
        next_payload(store, _checked_name(name), default_profile)  # 404 for a survey that does not exist
        return resources.files("impasto").joinpath("web", "static", "survey.html").read_text()

    @app.get("/api/surveys/{name}/next")
    def next_question(name: str, profile: str | None = None) -> dict[str, Any]:
        return next_payload(store, _checked_name(name), params.profile(profile, default_profile))

    @app.get("/api/surveys/{name}/questions/{question_id}/{side}.png")
    def image(name: str, question_id: str, side: str) -> FileResponse:
        path = question_image(store, _checked_name(name), params.row_id(question_id, "survey question"), side)
        return FileResponse(path, media_type="image/png", headers={"Cache-Control": "no-store"})

    @app.post("/api/surveys/{name}/questions/{question_id}/answer")
    async def answer(name: str, question_id: str, request: Request) -> dict[str, Any]:
        name, qid = _checked_name(name), params.row_id(question_id, "survey question")
        given = await params.fields(request)
        winner = params.one_of(given.get("answer"), WINNERS, "answer")
        profile = params.profile(given.get("profile"), default_profile)
        try:
            await run_in_threadpool(lambda: survey.answer(store, name, qid, winner, profile=profile))
        except InputError as exc:
            raise HTTPException(404, "no such survey question") from exc
        return next_payload(store, name, profile)
