"""Reading the small parameters of the feedback routes, each refusal one clear line: 422 for a bad value,
404 for an id that names nothing (a malformed id names nothing either, so it is 404 too, never a list of
validation errors)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from typing import Any, TypeVar

from fastapi import HTTPException, Request
from starlette.requests import ClientDisconnect

from impasto.errors import InputError
from impasto.feedback.store import check_profile

MAX_SMALL_BODY = 64 * 1024  # a rating or an answer is a few bytes
#: seconds a request's body may take to arrive: a client that declares more than it sends would
#: otherwise hold its connection (and the handler) open for ever
BODY_SECONDS = 60.0

T = TypeVar("T")


async def body_of(reading: Awaitable[T]) -> T:
    """``request.body()`` or ``request.form(...)``, given at most :data:`BODY_SECONDS` (408 after), and a
    client that goes away meanwhile ends the request quietly (400) instead of logging a traceback."""
    try:
        return await asyncio.wait_for(reading, BODY_SECONDS)
    except TimeoutError as exc:
        raise HTTPException(408, f"the request body did not arrive within {BODY_SECONDS:g} s") from exc
    except ClientDisconnect as exc:
        raise HTTPException(400, "the client went away before its request body arrived") from exc


async def fields(request: Request) -> dict[str, Any]:
    """A write's fields, from a JSON object (what the page sends) or a form, plus the query string's
    (a body field wins)."""
    out: dict[str, Any] = dict(request.query_params)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        raw = await body_of(request.body())
        if len(raw) > MAX_SMALL_BODY:
            raise HTTPException(413, "request body too large")
        try:
            body = json.loads(raw or b"{}")
        except (ValueError, RecursionError) as exc:  # RecursionError: arrays nested thousands deep
            raise HTTPException(422, "the body is not valid JSON") from exc
        if not isinstance(body, dict):
            raise HTTPException(422, "the body must be a JSON object")
        out.update(body)
    elif kind in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await body_of(request.form(max_files=0, max_fields=16))
        out.update({k: v for k, v in form.items() if isinstance(v, str)})
    return out


def _ascii_digits(text: str) -> bool:
    """Digits int() reads: str.isdigit() is also true for '²' and other Unicode digits int() refuses."""
    return text.isascii() and text.isdigit()


def row_id(text: str, what: str) -> int:
    """A database id from a path: anything but a positive decimal number names nothing (404)."""
    if not _ascii_digits(text) or len(text) > 18 or int(text) < 1:
        raise HTTPException(404, f"no such {what}")
    return int(text)


def profile(value: Any, default: str) -> str:
    """The feedback profile a request speaks for (``default`` when it names none)."""
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        raise HTTPException(422, "profile must be a text field")
    try:
        return check_profile(value)
    except InputError as exc:
        raise HTTPException(422, str(exc)) from exc


def one_of(value: Any, allowed: tuple[str, ...], name: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise HTTPException(422, f"{name} must be one of {', '.join(allowed)}, got {str(value)[:40]!r}")
    return value


def stars(value: Any) -> int:
    """1 to 5 stars, as a JSON integer or the text of one (a form field)."""
    if isinstance(value, str) and _ascii_digits(value.strip()):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        raise HTTPException(422, f"stars must be a whole number from 1 to 5, got {str(value)[:40]!r}")
    return value


def bounded(value: Any, name: str, default: int, lo: int, hi: int) -> int:
    """An integer query parameter within [lo, hi]."""
    if value is None or value == "":
        return default
    text = str(value).strip()
    if not _ascii_digits(text.lstrip("-")) or not lo <= int(text) <= hi:
        raise HTTPException(422, f"{name} must be a whole number from {lo} to {hi}, got {text[:40]!r}")
    return int(text)
