"""The web server's front door, before any route runs: body size, Host names, cross-site writes, token.

Why each check:
- size: a request body larger than the server accepts is refused from its Content-Length before a byte
  is read, and counted while it is read when the length is not declared (chunked), so no oversized
  upload is buffered or spooled to disk first;
- Host: a web page on an attacker's domain can rebind its name to 127.0.0.1 (DNS rebinding) and then
  talk to this server as "same origin"; only loopback names, IP literals and names the user allowed
  are served;
- Origin: any page the user visits can POST a form to localhost; writes (POST, DELETE, ...) whose
  Origin (or Sec-Fetch-Site) says they come from another site are refused;
- token: bound to anything but loopback, other machines can reach the server, so every request must
  carry the token printed at start (query ``?token=``, which sets a cookie, or ``Authorization: Bearer``).
"""

from __future__ import annotations

import ipaddress
import json
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.exceptions import HTTPException

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
COOKIE = "impasto_token"


def is_loopback(host: str) -> bool:
    if host.strip("[]") in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class Access:
    """Who may talk to the server: Host names beyond loopback and IP literals, and the token (if any)."""

    allowed_hosts: frozenset[str] = frozenset()
    token: str | None = None
    max_body: int = 64 * 2**20

    @classmethod
    def for_bind(cls, host: str, *, allowed_hosts: tuple[str, ...] = (), max_body: int = 64 * 2**20,
                 token: str | None = None) -> Access:
        """Loopback: no token. Anything else: the given token, or a fresh random one."""
        if not is_loopback(host) and token is None:
            token = secrets.token_urlsafe(24)
        names = {h.lower() for h in allowed_hosts}
        if host not in ("0.0.0.0", "::", ""):
            names.add(host.lower())
        return cls(frozenset(names), token, max_body)

    def host_allowed(self, host: str) -> bool:
        name = _host_name(host)
        if name in LOOPBACK_NAMES or name in self.allowed_hosts:
            return True
        try:
            ipaddress.ip_address(name)  # an IP literal cannot be rebound; a domain name can
            return True
        except ValueError:
            return False


@dataclass
class _Request:
    method: str
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, scope: Scope) -> _Request:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        return cls(scope.get("method", "GET"), headers, parse_qs(scope.get("query_string", b"").decode("latin-1")))


def _host_name(host: str) -> str:
    """'Example.com:8000' -> 'example.com'; '[::1]:8000' -> '::1'."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def refusal(access: Access, req: _Request) -> tuple[int, str] | None:
    """The (status, reason) a request is refused with, or None when it may go on."""
    if not access.host_allowed(req.headers.get("host", "")):
        return 403, "unknown Host name (start the server with --allow-host NAME to serve it)"
    if req.method not in SAFE_METHODS:
        origin = req.headers.get("origin")
        if origin is not None and (origin == "null" or urlsplit(origin).netloc.lower()
                                   != req.headers.get("host", "").lower()):
            return 403, "cross-origin request refused"
        if req.headers.get("sec-fetch-site") in ("cross-site", "same-site"):
            return 403, "cross-site request refused"
    if access.token is not None and not _has_token(access.token, req):
        return 403, "this server needs its token: open the address it printed at start"
    length = req.headers.get("content-length")
    if length is not None and (not (length.isascii() and length.isdigit()) or int(length) > access.max_body):
        return 413, f"request larger than {access.max_body // 2**20} MB"
    return None


def _has_token(token: str, req: _Request) -> bool:
    cookie = SimpleCookie()
    try:
        cookie.load(req.headers.get("cookie", ""))
    except Exception:  # a malformed Cookie header is simply no token
        return False
    offered = [*req.query.get("token", []), cookie[COOKIE].value if COOKIE in cookie else ""]
    auth = req.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        offered.append(auth[7:].strip())
    return any(secrets.compare_digest(o.encode(), token.encode()) for o in offered if o)


class Guard:
    """ASGI middleware applying :func:`refusal`, then counting the body as it is read."""

    def __init__(self, app: ASGIApp, access: Access) -> None:
        self.app, self.access = app, access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        req = _Request.of(scope)
        refused = refusal(self.access, req)
        if refused is not None:
            await _reply(send, *refused)
            return
        send = self._with_cookie(send, req)
        await self.app(scope, self._counted(receive), send)

    def _counted(self, receive: Receive) -> Receive:
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.access.max_body:  # raised inside the route's body read: FastAPI answers 413
                raise HTTPException(413, f"request larger than {self.access.max_body // 2**20} MB")
            return message

        return counted

    def _with_cookie(self, send: Send, req: _Request) -> Send:
        """A token given in the address becomes a same-site cookie, so the page's own requests carry it."""
        token = self.access.token
        if token is None or token not in req.query.get("token", []):
            return send

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                value = f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
                message["headers"] = [*message.get("headers", []), (b"set-cookie", value.encode())]
            await send(message)

        return sending


async def _reply(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
