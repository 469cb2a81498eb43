"""The web server's side of the feedback store: every finished job recorded as a run, star ratings, and
the history of past runs with their images.

Why here and not in the job manager: the manager knows nothing of the store (it only calls its
``on_done`` hook, and keeps the job done whatever the hook does), so a locked or damaged database costs a
record, never a result. Images of past runs are served by run id only: the run's output file when it
still lies in this server's results folder, else the thumbnail the profile opted in to keep; a path
from the database that points anywhere else is never read.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import torch
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from impasto.errors import InputError
from impasto.feedback.store import FeedbackStore
from impasto.web import params
from impasto.web.jobs import Job
from impasto.web.results import ResultStore

#: the settings a history row shows (the rest stays in the store and its export)
KEY_SETTINGS = ("strength", "size", "max_size", "iterations", "preserve_color", "style_index", "model")


def measure_pair(job: Job) -> float | None:
    """The photo-painting feature the taste model reads, for a method that takes a painting."""
    from impasto import stylizer

    if not job.styles or job.content is None or not stylizer.get_method(job.method).needs_style:
        return None
    from impasto.feedback.taste import pair_feature

    return pair_feature(job.content, job.styles[0])


class Recorder:
    """The job manager's ``on_done`` hook: the finished job becomes a run of its profile (fingerprints
    of the uploads and the result, the settings record, the pair feature), its id on the job."""

    def __init__(self, store: FeedbackStore, enabled: bool = True) -> None:
        self.store, self.enabled = store, enabled

    def __call__(self, job: Job, image: torch.Tensor) -> None:
        from impasto import stylizer
        from impasto.feedback.fingerprint import run_record

        if not self.enabled or job.result is None:
            return
        record = {"method": job.method, "options": {}, **job.info}
        feature = job.feature if job.feature is not None else measure_pair(job)
        if feature is not None:
            record["pair_feature"] = round(float(feature), 4)
        styles = job.styles if stylizer.get_method(job.method).needs_style else []
        thumbnail = image if self.store.keep_thumbnails(job.profile) else None
        run = run_record(record, content=job.content, styles=styles, result=job.result, source="web",
                         thumbnail=thumbnail)
        job.run_id = self.store.add_run(job.profile, run)


def run_image(store: FeedbackStore, results: ResultStore, run_id: int) -> Response:
    """A past run's image: its result file if it is still in the results folder, else its thumbnail."""
    run = store.run(run_id)
    if run is None:
        raise HTTPException(404, "no such run")
    path = Path(run["output_path"]) if run.get("output_path") else None
    folder = results.folder.resolve()
    if path is not None and path.resolve().parent == folder and path.suffix == ".png" and path.is_file():
        return FileResponse(path.resolve(), media_type="image/png")
    thumb = store.thumbnail(run_id)
    if thumb is None:
        raise HTTPException(404, "this run's image is no longer kept")
    return Response(thumb, media_type="image/png")


def _has_image(run: dict[str, Any], folder: Path) -> bool:
    path = run.get("output_path")
    in_results = bool(path) and Path(path).resolve().parent == folder and Path(path).is_file()
    return in_results or bool(run.get("has_thumbnail"))


def history_row(run: dict[str, Any], folder: Path) -> dict[str, Any]:
    """What the history page shows of a run: no fingerprints, no paths."""
    settings = run.get("settings") or {}
    return {"id": run["id"], "created": run["created"], "method": run["method"], "source": run["source"],
            "seconds": run["seconds"], "stars": run["stars"], "label": run.get("label"),
            "settings": {k: settings[k] for k in KEY_SETTINGS if settings.get(k) is not None},
            "has_image": _has_image(run, folder)}


def add_history_routes(app: FastAPI, store: FeedbackStore, results: ResultStore, default_profile: str) -> None:
    """Ratings, the history (JSON and page) and past runs' images."""

    @app.post("/api/runs/{run_id}/rating")
    async def rate(run_id: str, request: Request) -> dict[str, Any]:
        rid = params.row_id(run_id, "run")
        stars = params.stars((await params.fields(request)).get("stars"))
        try:
            await _in_thread(store.rate, rid, stars)
        except InputError as exc:  # the run is gone (forgotten) or never was
            raise HTTPException(404, "no such run") from exc
        return {"run_id": rid, "stars": stars}

    @app.get("/api/runs/{run_id}")
    def run(run_id: str) -> dict[str, Any]:
        found = store.run(params.row_id(run_id, "run"))
        if found is None:
            raise HTTPException(404, "no such run")
        return history_row(found, results.folder.resolve())

    @app.get("/api/runs/{run_id}/image.png")
    def image(run_id: str) -> Response:
        return run_image(store, results, params.row_id(run_id, "run"))

    @app.get("/api/history")
    def history(profile: str | None = None, limit: str | None = None, offset: str | None = None) -> dict[str, Any]:
        name = params.profile(profile, default_profile)
        n = params.bounded(limit, "limit", 50, 1, 500)
        skip = params.bounded(offset, "offset", 0, 0, 10**9)
        folder = results.folder.resolve()
        rows = [history_row(r, folder) for r in store.history(name, limit=n, offset=skip)]
        return {"profile": name, "limit": n, "offset": skip, "runs": rows}

    @app.get("/history", response_class=HTMLResponse)
    def page() -> str:
        return resources.files("impasto").joinpath("web", "static", "history.html").read_text()


async def _in_thread(fn: Any, *args: Any) -> Any:
    """Store writes wait on a lock and maybe on another process: off the event loop."""
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args)
