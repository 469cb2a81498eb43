"""FastAPI app behind ``impasto serve``: upload, queue, live progress (server-sent events), download.

Limits are enforced before any work: the request's size and origin at the front door
(:mod:`impasto.web.guard`: 413, 403), upload bytes (413), pixel count read from the header before
decoding (413), the file's actual content must decode as an image of an accepted format whatever its
name (415), parameters are validated (422). Images are decoded in a worker thread, so one large upload
does not stall other requests. Uploads live in memory only; results are kept on disk
(:mod:`impasto.web.results`) so they survive a restart.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from impasto import stylizer
from impasto.errors import InputError
from impasto.feedback.store import DEFAULT_PROFILE, FeedbackStore, check_profile, recording_disabled
from impasto.web import params
from impasto.web.guard import Access, Guard
from impasto.web.jobs import FINISHED, Capacity, Job, JobManager, QueueFull, Submission
from impasto.web.results import ResultStore

ACCEPTED_FORMATS = {"JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF", "MPO"}
#: form fields that are not method options
RESERVED = ("content", "style", "style_name", "method", "profile")


@dataclass
class Limits:
    max_upload_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 24_000_000
    max_size: int = 1024  # longest output side for gatys / downscale for fast and adain
    max_iterations: int = 1000

    @property
    def max_body(self) -> int:
        """A request carries at most a photo, a painting and a few small fields."""
        return 2 * self.max_upload_bytes + 2**20


def decode_upload(data: bytes, name: str, limits: Limits) -> torch.Tensor:
    """Image bytes (already size-checked by ``_read_limited``) -> tensor, or the HTTP error that says why
    not (checked by content, not by name)."""
    from PIL import Image, UnidentifiedImageError

    from impasto.io import load_image_bytes

    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt, (w, h) = img.format, img.size
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise HTTPException(415, f"{name}: not an image (accepted: JPEG, PNG, WebP, BMP, TIFF, GIF)") from exc
    except Image.DecompressionBombError as exc:
        raise HTTPException(413, f"{name}: too many pixels") from exc
    if fmt not in ACCEPTED_FORMATS:
        raise HTTPException(415, f"{name}: {fmt} images are not accepted")
    if w * h > limits.max_pixels:
        raise HTTPException(413, f"{name}: {w}x{h} is more than {limits.max_pixels // 1_000_000} megapixels")
    try:
        return load_image_bytes(data, name=name)
    except InputError as exc:
        raise HTTPException(415, str(exc)) from exc


async def _read_limited(upload: UploadFile, limits: Limits) -> bytes:
    data = await upload.read(limits.max_upload_bytes + 1)
    if len(data) > limits.max_upload_bytes:
        raise HTTPException(413, f"{upload.filename or 'upload'}: larger than "
                                 f"{limits.max_upload_bytes // (1024 * 1024)} MB")
    return data


def run_job(job: Job, progress: Any) -> tuple[torch.Tensor, dict[str, Any]]:
    """The one place the web UI calls the engine: the same contract as the CLI."""
    out = stylizer.stylize(stylizer.StylizeRequest(job.content, job.styles, job.options), progress, preview_every=10)
    return out.image, out.record


def web_options(method: str, form: dict[str, Any], limits: Limits) -> stylizer.Options:
    """Options from the form (422 on anything the contract refuses), within the server's limits; a size
    the form does not give is the server's limit where the declared default is larger (or, for the
    feed-forward methods, unset)."""
    try:
        options = stylizer.from_web_form(method, form)
    except InputError as exc:
        raise HTTPException(422, str(exc)) from exc
    size = stylizer.output_size(options)
    asked = str(form.get("size") or "").strip().lower() not in ("", "none")  # as the options read an empty value
    if size is not None and size > limits.max_size and asked:
        raise HTTPException(422, f"size must be at most {limits.max_size}")
    if hasattr(options, "max_size") and (size is None or size > limits.max_size):
        options.max_size = limits.max_size  # type: ignore[union-attr]
    elif isinstance(options, stylizer.GatysOptions) and size is not None and size > limits.max_size:
        options.size = limits.max_size  # the declared default is over this server's limit: the limit
    if (getattr(options, "iterations", None) or 0) > limits.max_iterations:
        raise HTTPException(422, f"iterations must be at most {limits.max_iterations}")
    return options


def create_app(*, limits: Limits | None = None, capacity: Capacity | None = None, runner: Any = run_job,
               results_dir: str | Path | None = None, access: Access | None = None,
               db_path: str | Path | None = None, profile: str = DEFAULT_PROFILE) -> FastAPI:
    """The app; ``results_dir`` defaults to ``web-results`` in the data directory, ``access`` to a
    loopback-only server without a token, ``db_path`` to the feedback store in the data directory (opened
    here, so a database that cannot be used stops the server before it serves; closed at shutdown),
    ``profile`` is the feedback profile of requests that name none."""
    from impasto import bundled
    from impasto.paths import data_home
    from impasto.web import ab, history, surveys

    profile = check_profile(profile)  # a bad --profile is a one-line error before anything opens
    limits = limits or Limits()
    access = access or Access.for_bind("127.0.0.1")
    access.max_body = limits.max_body
    app = FastAPI(title="impasto", version="0.1.0")
    app.add_middleware(Guard, access=access)
    store = ResultStore(results_dir if results_dir is not None else data_home() / "web-results")
    feedback = FeedbackStore(db_path)
    recording = not recording_disabled()
    manager = JobManager(runner, store, capacity, on_done=history.Recorder(feedback, recording))
    app.state.manager, app.state.limits, app.state.access, app.state.feedback = manager, limits, access, feedback
    app.router.add_event_handler("shutdown", manager.shutdown)  # first: a running job may still record
    app.router.add_event_handler("shutdown", feedback.close)
    uploads = Uploads(limits, bundled.styles(), profile)

    _add_page_routes(app, limits, uploads.styles)
    _add_submit_route(app, manager, uploads)
    _add_job_routes(app, manager)
    history.add_history_routes(app, feedback, store, uploads.default_profile)
    book = ab.ABBook(manager.capacity.max_finished)
    ab.add_ab_routes(app, ab.ABContext(manager, feedback, book, lambda request, methods: read_submission(
        request, uploads, methods), history.measure_pair, recording))
    surveys.add_survey_routes(app, feedback, uploads.default_profile)
    return app


def _add_page_routes(app: FastAPI, limits: Limits, styles: dict[str, Any]) -> None:
    """The page, the methods and options it builds its form from, and the bundled paintings."""

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return resources.files("impasto").joinpath("web", "static", "index.html").read_text()

    @app.get("/api/methods")
    def methods() -> dict[str, Any]:
        """The methods and the options the form offers, from the contract's declarations."""
        return {"default": stylizer.WEB_DEFAULT_METHOD, "methods": stylizer.describe(web_only=True)}

    @app.get("/api/options")
    def options() -> dict[str, Any]:
        from impasto.methods import load_fast_model, model_for

        _, meta = load_fast_model(model_for(stylizer.FastOptions()))
        return {"methods": list(stylizer.METHODS), "default_method": stylizer.WEB_DEFAULT_METHOD,
                "styles": list(styles), "fast_styles": meta.get("styles", []),
                "limits": {"max_upload_mb": limits.max_upload_bytes / 2**20, "max_megapixels": limits.max_pixels / 1e6,
                           "max_size": limits.max_size, "max_iterations": limits.max_iterations}}

    @app.get("/api/styles/{name}.jpg")
    def style_image(name: str) -> Response:
        if name not in styles:  # names come from the bundled list only, never a client path
            raise HTTPException(404, "no such bundled style")
        return Response(styles[name].read_bytes(), media_type="image/jpeg")


@dataclass
class Uploads:
    """What every upload route checks against: the server's limits, the bundled paintings, the profile a
    request that names none is recorded under."""

    limits: Limits
    styles: dict[str, Any]
    default_profile: str = DEFAULT_PROFILE


async def read_submission(request: Request, uploads: Uploads, methods: tuple[str, ...] = tuple(stylizer.METHODS)
                          ) -> Submission:
    """The one upload path (/api/jobs, /api/ab): method, options, photo, painting and profile, every
    check before anything is queued (413, 415, 422)."""
    limits = uploads.limits
    form = await params.body_of(request.form(max_files=2, max_fields=64))
    method = str(form.get("method") or stylizer.WEB_DEFAULT_METHOD)
    if method not in methods:
        raise HTTPException(422, f"method must be one of {', '.join(methods)}")
    profile = params.profile(form.get("profile") or request.query_params.get("profile"), uploads.default_profile)
    fields = {k: v for k, v in form.items() if k not in RESERVED}
    opts = web_options(method, fields, limits)
    content = form.get("content")
    if not isinstance(content, UploadFile):
        raise HTTPException(422, "content: upload a photo")
    data = await _read_limited(content, limits)
    image = await run_in_threadpool(decode_upload, data, content.filename or "content", limits)
    try:
        stylizer.check_content_size(image, opts)  # the CLI's rule: gatys refuses what VGG cannot see
    except InputError as exc:
        raise HTTPException(422, str(exc)) from exc
    style_images = await _style_images(form.get("style"), form.get("style_name"), uploads)
    if stylizer.get_method(method).needs_style and not style_images:
        raise HTTPException(422, f"method {method} needs a style image (upload one or pick style_name)")
    if style_images and not stylizer.get_method(method).needs_style:  # the CLI's rule: never ignored silently
        raise HTTPException(422, f"method {method} paints the styles its model was trained on and takes no "
                                 "painting (choose one with style_index or style_mix)")
    if isinstance(opts, stylizer.FastOptions):
        _check_fast_index(opts)
    return Submission(method, image, style_images, opts, profile,
                      lambda overrides: web_options(method, {**fields, **overrides}, limits))


async def _style_images(upload: Any, style_name: Any, uploads: Uploads) -> list[torch.Tensor]:
    if isinstance(upload, UploadFile) and upload.filename:
        data = await _read_limited(upload, uploads.limits)
        return [await run_in_threadpool(decode_upload, data, upload.filename, uploads.limits)]
    if style_name:
        if style_name not in uploads.styles:
            raise HTTPException(422, f"unknown style_name {str(style_name)[:40]!r}")
        from impasto.io import load_image

        return [await run_in_threadpool(load_image, uploads.styles[style_name])]
    return []


def _check_fast_index(opts: stylizer.FastOptions) -> None:
    from impasto.methods import load_fast_model

    n = int(load_fast_model(stylizer.model_path(opts))[1]["n_styles"])  # type: ignore[arg-type]
    if (opts.style_index or 0) >= n:
        raise HTTPException(422, f"style_index must be below {n}")


def _add_submit_route(app: FastAPI, manager: JobManager, uploads: Uploads) -> None:
    """POST /api/jobs: every check before the job is queued (413, 415, 422, 503)."""
    @app.post("/api/jobs", status_code=202)
    async def create_job(request: Request) -> dict[str, Any]:
        job = (await read_submission(request, uploads)).job()
        try:
            manager.submit(job)
        except QueueFull as exc:
            raise HTTPException(503, str(exc)) from exc
        return job.public(manager.position(job))


def _add_job_routes(app: FastAPI, manager: JobManager) -> None:
    """A job's status, cancel, result, preview and live events."""
    def job_or_404(job_id: str) -> Job:
        job = manager.get(job_id)
        if job is None:
            raise HTTPException(404, "no such job (finished jobs expire)")
        return job
    @app.get("/api/jobs/{job_id}")
    def job_status(job_id: str) -> dict[str, Any]:
        job = job_or_404(job_id)
        return job.public(manager.position(job))

    @app.delete("/api/jobs/{job_id}")
    def cancel_job(job_id: str) -> dict[str, Any]:
        job = job_or_404(job_id)
        manager.cancel(job)
        return job.public(manager.position(job))

    @app.get("/api/jobs/{job_id}/result.png")
    def result(job_id: str) -> Response:
        job = job_or_404(job_id)
        if job.result is None:
            raise HTTPException(409, f"job is {job.state}, no result" + ("" if job.state in FINISHED else " yet"))
        return FileResponse(job.result, media_type="image/png", filename=f"impasto_{job.method}.png")

    @app.get("/api/jobs/{job_id}/preview.jpg")
    def preview(job_id: str) -> Response:
        job = job_or_404(job_id)
        if job.preview is None:
            raise HTTPException(404, "no preview yet")
        return Response(job.preview, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @app.get("/api/jobs/{job_id}/events")
    async def events(job_id: str) -> StreamingResponse:
        job = job_or_404(job_id)

        async def stream() -> AsyncIterator[str]:
            seen = -1
            while True:
                if job.version != seen:
                    seen = job.version
                    yield f"event: {job.state}\ndata: {json.dumps(job.public(manager.position(job)))}\n\n"
                    if job.state in FINISHED:
                        return
                await asyncio.sleep(0.2)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})
